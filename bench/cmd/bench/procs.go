package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times (100 on every Linux the harness targets).
const clockTicks = 100

// roleEnv names the environment variable that makes the harness binary
// (or its test binary) run as a subprocess; specEnv holds its JSON spec.
const (
	roleEnv = "WEBHOOK_BENCH_ROLE"
	specEnv = "WEBHOOK_BENCH_SPEC"
)

// cpuOf returns the user plus system CPU time process pid has used.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from its ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// pgBackends samples the CPU of the PostgreSQL backends serving the
// connections named app (application_name), read from /proc: the
// database runs on this machine.
type pgBackends struct {
	pool *pgxpool.Pool
	apps []string
}

// sample returns each backend's CPU time by PID.
func (b pgBackends) sample(ctx context.Context) (map[int]time.Duration, error) {
	rows, err := b.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = ANY($1)`, b.apps)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		if c, err := cpuOf(pid); err == nil {
			out[pid] = c
		}
	}
	return out, rows.Err()
}

// cpuDelta sums the CPU used between two samples; a backend that
// started in between counts from zero.
func cpuDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, c := range after {
		d += c - before[pid]
	}
	return d
}

// child is a subprocess running the harness binary in a role.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	ready  string // the rest of the "ready" line
	stderr *strings.Builder
}

// startChild runs the harness binary as role with spec, and waits for
// its "ready" line.
func startChild(ctx context.Context, role string, spec any) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, specEnv+"="+string(js))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: in, lines: bufio.NewScanner(out), stderr: &stderr}
	c.lines.Buffer(make([]byte, 1<<20), 16<<20)
	line, err := c.readLine(ctx, time.Minute)
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("%s: %w (stderr: %s)", role, err, stderr.String())
	}
	rest, ok := strings.CutPrefix(line, "ready")
	if !ok {
		c.kill()
		return nil, fmt.Errorf("%s: said %q, not ready (stderr: %s)", role, line, stderr.String())
	}
	c.ready = strings.TrimSpace(rest)
	return c, nil
}

// readLine reads the child's next stdout line, within timeout.
func (c *child) readLine(ctx context.Context, timeout time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		if c.lines.Scan() {
			ch <- res{s: c.lines.Text()}
			return
		}
		err := c.lines.Err()
		if err == nil {
			err = io.EOF
		}
		ch <- res{err: err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-t.C:
		return "", fmt.Errorf("no answer within %s", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// send writes one line to the child's stdin.
func (c *child) send(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

// finish closes the child's stdin (its signal to stop), reads its final
// JSON line into result and waits for it to exit.
func (c *child) finish(ctx context.Context, result any) error {
	c.stdin.Close()
	line, err := c.readLine(ctx, time.Minute)
	if err != nil {
		c.kill()
		return fmt.Errorf("final line: %w (stderr: %s)", err, c.stderr.String())
	}
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("%w (stderr: %s)", err, c.stderr.String())
	}
	if result != nil {
		if err := json.Unmarshal([]byte(line), result); err != nil {
			return fmt.Errorf("final line %q: %w", line, err)
		}
	}
	return nil
}

// kill ends the child at once (after a failure).
func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}
