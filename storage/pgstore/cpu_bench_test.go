package pgstore_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuMeter measures the CPU time this process and the PostgreSQL
// backends serving its pool spend, for benchmarks that report CPU per
// delivery. The backends are read from /proc, so their figures exist
// only when PostgreSQL runs on this machine (Linux); otherwise they are
// zero.
type cpuMeter struct {
	b          *testing.B
	self, pg   time.Duration
	selfOK, ok bool
}

func startCPU(b *testing.B) *cpuMeter {
	m := &cpuMeter{b: b}
	m.self, m.selfOK = processCPU()
	m.pg, m.ok = backendsCPU(b)
	return m
}

// report adds worker-µs/delivery and pg-µs/delivery for n deliveries.
func (m *cpuMeter) report(n int) {
	if self, ok := processCPU(); ok && m.selfOK {
		m.b.ReportMetric(float64((self-m.self).Microseconds())/float64(n), "worker-µs/delivery")
	}
	if pg, ok := backendsCPU(m.b); ok && m.ok {
		m.b.ReportMetric(float64((pg-m.pg).Microseconds())/float64(n), "pg-µs/delivery")
	}
}

func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// backendsCPU sums the CPU time of the backends of the test pool's
// connections, which persist across benchmarks (the pool is shared).
func backendsCPU(b *testing.B) (time.Duration, bool) {
	rows, err := testPool(b).Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE usename = current_user AND datname = current_database()
			AND client_addr IS NOT NULL AND backend_type = 'client backend'
			AND application_name = current_setting('application_name')`)
	if err != nil {
		return 0, false
	}
	defer rows.Close()
	var total time.Duration
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return 0, false
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 13 {
			return 0, false
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+s) * (time.Second / 100) // clock ticks (USER_HZ)
	}
	return total, rows.Err() == nil
}
