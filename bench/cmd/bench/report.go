package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func perDelivery(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / float64(n)
}

// printThroughput writes the throughput table: per-repetition rates,
// medians, ratios to raw (and pgstore's to River's) per repetition, and
// the median CPU per delivery.
func printThroughput(out io.Writer, cs []contender, res map[string][]runResult) {
	fmt.Fprintln(out, "## Throughput (deliveries/s)")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| contender | per repetition | median | × raw, per repetition | CPU µs/delivery: worker | PostgreSQL | receiver | body B |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	rates := func(name string) []float64 {
		var xs []float64
		for _, r := range res[name] {
			xs = append(xs, r.rate())
		}
		return xs
	}
	ratios := func(a, b string) string {
		ra, rb := rates(a), rates(b)
		if len(ra) == 0 || len(rb) == 0 {
			return "–"
		}
		var parts []string
		for i := range min(len(ra), len(rb)) {
			parts = append(parts, fmt.Sprintf("%.2f", ra[i]/rb[i]))
		}
		return strings.Join(parts, " / ")
	}
	for _, c := range cs {
		rs := res[c.name]
		var parts []string
		var w, p, r, body []float64
		for _, x := range rs {
			parts = append(parts, fmt.Sprintf("%.0f", x.rate()))
			w = append(w, perDelivery(x.WorkerCPU, x.N))
			p = append(p, perDelivery(x.PGCPU, x.N))
			r = append(r, perDelivery(x.RecvCPU, x.N))
			body = append(body, float64(x.BodyBytes))
		}
		pg := fmt.Sprintf("%.0f", median(p))
		if c.kind == "raw" || c.kind == "mem" {
			pg = "–"
		}
		fmt.Fprintf(out, "| %s | %s | **%.0f** | %s | %.0f | %s | %.0f | %.0f |\n", c.label, strings.Join(parts, " / "), median(rates(c.name)),
			ratios(c.name, "raw"), median(w), pg, median(r), median(body))
	}
	fmt.Fprintln(out)
	for _, pair := range [][2]string{{"pg1", "river1"}, {"pg2", "river2"}} {
		if len(res[pair[0]]) > 0 && len(res[pair[1]]) > 0 {
			fmt.Fprintf(out, "%s ÷ %s, per repetition: %s\n", pair[0], pair[1], ratios(pair[0], pair[1]))
		}
	}
	fmt.Fprintln(out)
}
