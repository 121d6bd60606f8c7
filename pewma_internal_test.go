package webhook

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func observeOK(t *testing.T, d *DetectorState, x, k float64, dir AnomalyDirection) pewmaVerdict {
	t.Helper()
	v, ok := d.observe(x, k, dir)
	require.True(t, ok, "observe(%v)", x)
	return v
}

// The warm-up is the running mean and population variance, by hand:
// 10, 12, 11 has means 10, 11, 11 and variances 0, 1, 2/3.
func TestPEWMAWarmUpByHand(t *testing.T) {
	var d DetectorState
	v := observeOK(t, &d, 10, 3, AnomalyBoth)
	assert.Equal(t, 10.0, v.expected, "nothing learnt: the value is expected")
	assert.InDelta(t, 0.100001, v.sigma, 1e-12, "σ floor: 1% of |10| + 1e-6")
	assert.Equal(t, 0.0, v.score)
	assert.True(t, v.warmingUp)
	assert.Equal(t, DetectorState{Buckets: 1, S1: 10, S2: 0}, d)

	v = observeOK(t, &d, 12, 3, AnomalyBoth)
	assert.Equal(t, 10.0, v.expected)
	assert.InDelta(t, 2/0.100001, v.score, 1e-9, "judged against the floor")
	assert.True(t, v.warmingUp)
	assert.False(t, v.anomalous, "never during the warm-up, whatever the score")
	assert.Equal(t, AnomalyAbove, v.side)
	assert.InDelta(t, 11, d.S1, 1e-12)
	assert.InDelta(t, 1, d.S2, 1e-12)

	v = observeOK(t, &d, 11, 3, AnomalyBoth)
	assert.Equal(t, 11.0, v.expected)
	assert.Equal(t, 1.0, v.sigma)
	assert.Equal(t, 0.0, v.score)
	assert.Equal(t, 8.0, v.lower)
	assert.Equal(t, 14.0, v.upper)
	assert.Equal(t, AnomalyBoth, v.side, "at the expected value: neither side")
	assert.InDelta(t, 11, d.S1, 1e-12)
	assert.InDelta(t, 2.0/3, d.S2, 1e-12)
	assert.Equal(t, int64(3), d.Buckets)
}

// After the warm-up, by hand from S1 = 100, S2 = 4 (σ = 2), k = 3.
func TestPEWMAUpdateByHand(t *testing.T) {
	trained := func() *DetectorState { return &DetectorState{Buckets: pewmaWarmup, S1: 100, S2: 4} }
	pdf := func(z float64) float64 { return math.Exp(-z*z/2) / math.Sqrt(2*math.Pi) }

	// z = 0: P = 0.3989, a = 0.9·(1−P); the mean stays, the variance
	// decays by 0.9.
	d := trained()
	v := observeOK(t, d, 100, 3, AnomalyBoth)
	assert.False(t, v.warmingUp)
	assert.Equal(t, 0.0, v.score)
	assert.Equal(t, 94.0, v.lower)
	assert.Equal(t, 106.0, v.upper)
	assert.InDelta(t, 100, d.S1, 1e-12)
	assert.InDelta(t, 3.6, d.S2, 1e-12)

	// z = 2: P = 0.05399, a = 0.85141, S1 = 100 + 0.14859·4, S2 = 0.9·(4 + 0.1·16).
	d = trained()
	v = observeOK(t, d, 104, 3, AnomalyBoth)
	assert.Equal(t, 2.0, v.score)
	assert.False(t, v.anomalous)
	assert.InDelta(t, 0.05399097, pdf(2), 1e-8)
	assert.InDelta(t, 100.594368, d.S1, 1e-6)
	assert.InDelta(t, 5.04, d.S2, 1e-12)

	// Exactly on the band's edge is not outside it.
	d = trained()
	v = observeOK(t, d, 106, 3, AnomalyBoth)
	assert.Equal(t, 3.0, v.score)
	assert.False(t, v.anomalous)

	// z = 3.5: anomalous; P = 0.000873, so the mean moves by only 10.08%
	// of the deviation, and the deviation counts for 3σ = 6 in the
	// variance: 0.9·(4 + 0.1·36).
	d = trained()
	v = observeOK(t, d, 107, 3, AnomalyBoth)
	assert.Equal(t, 3.5, v.score)
	assert.True(t, v.anomalous)
	assert.InDelta(t, 0.000872683, pdf(3.5), 1e-9)
	assert.InDelta(t, 100.705498, d.S1, 1e-6)
	assert.InDelta(t, 6.84, d.S2, 1e-12)
	assert.Equal(t, int64(pewmaWarmup+1), d.Buckets)

	// Directions: a spike is above, a dip below.
	for _, c := range []struct {
		x    float64
		dir  AnomalyDirection
		want bool
	}{
		{107, AnomalyAbove, true}, {107, AnomalyBelow, false}, {93, AnomalyBelow, true},
		{93, AnomalyAbove, false}, {93, AnomalyBoth, true}, {107, "", true},
	} {
		v := observeOK(t, trained(), c.x, 3, c.dir)
		assert.Equal(t, c.want, v.anomalous, "%v %s", c.x, c.dir)
	}
	// A higher sensitivity widens the band.
	v = observeOK(t, trained(), 107, 4, AnomalyBoth)
	assert.False(t, v.anomalous)
	assert.Equal(t, 108.0, v.upper)
}

func TestPEWMAWarmUpLength(t *testing.T) {
	var d DetectorState
	for i := range pewmaWarmup {
		x := 100.0
		if i == pewmaWarmup-1 {
			x = 1e6 // the last warm-up bucket
		}
		v := observeOK(t, &d, x, 3, AnomalyBoth)
		require.True(t, v.warmingUp, i)
		require.False(t, v.anomalous, i)
	}
	v := observeOK(t, &d, 1e7, 3, AnomalyBoth)
	assert.False(t, v.warmingUp, "bucket %d is judged", pewmaWarmup+1)
	assert.True(t, v.anomalous)
}

func TestPEWMAFlatSeries(t *testing.T) {
	for _, level := range []float64{0, 100, -3.5, 1e12} {
		var d DetectorState
		for i := range 1000 {
			v := observeOK(t, &d, level, 3, AnomalyBoth)
			require.False(t, v.anomalous, "level %v bucket %d", level, i)
			require.Equal(t, 0.0, v.score, "level %v bucket %d", level, i)
			require.Positive(t, v.sigma)
		}
	}
	// A step after a flat stretch is judged against the floor: 1% of
	// the level.
	var d DetectorState
	for range 100 {
		observeOK(t, &d, 100, 3, AnomalyBoth)
	}
	v := observeOK(t, &d, 104, 3, AnomalyBoth)
	assert.InDelta(t, 4/1.000001, v.score, 1e-9)
	assert.True(t, v.anomalous)
}

func TestPEWMARefusesWhatItCannotLearn(t *testing.T) {
	d := DetectorState{Buckets: 40, S1: 5, S2: 1}
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 2e150, -2e150} {
		_, ok := d.observe(x, 3, AnomalyBoth)
		assert.False(t, ok, x)
	}
	assert.Equal(t, DetectorState{Buckets: 40, S1: 5, S2: 1}, d, "unchanged")
	// The largest values it accepts keep the state finite.
	for _, x := range []float64{1e150, -1e150, 1e150, 0} {
		v, ok := d.observe(x, 3, AnomalyBoth)
		require.True(t, ok)
		for _, f := range []float64{v.score, v.expected, v.lower, v.upper, d.S1, d.S2} {
			require.False(t, math.IsInf(f, 0) || math.IsNaN(f), "%v: %v", x, f)
		}
	}
}

// On Gaussian noise a 3σ band is left by about 1% of the buckets (0.27%
// for the true σ; the estimate's own noise widens the tails). The
// paper's variance weighting would leave about 10%.
func TestPEWMAFalseAlarmRate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	var alarms, judged int
	for range 50 {
		var d DetectorState
		for range 2000 {
			v := observeOK(t, &d, 100+5*r.NormFloat64(), 3, AnomalyBoth)
			if !v.warmingUp {
				judged++
				if v.anomalous {
					alarms++
				}
			}
		}
	}
	rate := float64(alarms) / float64(judged)
	t.Logf("false alarm rate at 3σ: %.4f", rate)
	assert.Less(t, rate, 0.015)
	assert.Greater(t, rate, 0.001, "the band is not wider than 3σ either")
}

func BenchmarkPEWMAObserve(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 1024)
	for i := range xs {
		xs[i] = 100 + 5*r.NormFloat64()
	}
	var d DetectorState
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := d.observe(xs[i%len(xs)], 3, AnomalyBoth); !ok {
			b.Fatal("refused")
		}
	}
}

// Whatever the values, the detector's state and verdicts stay finite,
// so that the state can always be stored (as JSON) and the data sent.
func FuzzPEWMAObserve(f *testing.F) {
	f.Add(100.0, 5.0, 3.0, int64(7))
	f.Add(0.0, 0.0, 0.5, int64(0))
	f.Add(1e150, -1e150, 10.0, int64(1))
	f.Add(-3e-300, 4.9e-324, 1.0, int64(99))
	f.Fuzz(func(t *testing.T, level, spread, k float64, seed int64) {
		if math.IsNaN(k) || k <= 0 || k > 10 {
			return
		}
		r := rand.New(rand.NewPCG(uint64(seed), 0))
		var d DetectorState
		for i := range 80 {
			x := level + spread*r.NormFloat64()
			if i%17 == 16 {
				x = level * 1e3
			}
			v, ok := d.observe(x, k, AnomalyBoth)
			if !ok {
				continue
			}
			for _, f := range []float64{v.expected, v.lower, v.upper, v.sigma, v.score, d.S1, d.S2} {
				if math.IsNaN(f) || math.IsInf(f, 0) {
					t.Fatalf("bucket %d (%v): not finite: verdict %+v, state %+v", i, x, v, d)
				}
			}
			if v.sigma <= 0 || d.S2 < 0 {
				t.Fatalf("bucket %d: sigma %v, variance %v", i, v.sigma, d.S2)
			}
		}
	})
}
