package webhook

import "math"

// The anomaly detector: a probabilistic exponentially weighted moving
// average (PEWMA; Carter and Streilein, "Probabilistic reasoning for
// streaming anomaly detection", IEEE SSP 2012), with O(1) state
// (DetectorState) per series, updated once per closed bucket.
//
// For bucket t with value x_t, the detector first judges x_t against
// what it learnt from the buckets before it:
//
//	expected  μ_t = S1
//	sigma     σ_t = max(sqrt(S2), minSigmaRel·|μ_t| + minSigmaAbs)
//	score     z_t = (x_t − μ_t) / σ_t
//	band      [μ_t − k·σ_t, μ_t + k·σ_t]   (k: the trigger's sensitivity)
//
// and then learns it. The paper writes α for the weight of the history
// (s ← α·s + (1−α)·x); this file writes pewmaAlpha for the weight of the
// new bucket, so the paper's α is 1 − pewmaAlpha = 0.9. With d_t = x_t − μ_t:
//
//	warm-up (t ≤ pewmaWarmup):  a_t = 1 − 1/t,  v_t = a_t,  e_t = d_t
//	afterwards:                 a_t = (1−pewmaAlpha)·(1 − pewmaBeta·P_t),  P_t = exp(−z_t²/2)/√(2π)
//	                            v_t = 1 − pewmaAlpha,  e_t = d_t clipped to ±pewmaClip·σ_t
//	mean:                       S1 ← μ_t + (1 − a_t)·d_t        (= a_t·S1 + (1−a_t)·x_t, the paper's s1)
//	variance:                   S2 ← v_t·(S2 + (1 − v_t)·e_t²)
//
// During the warm-up this is the paper's plain running mean, and S2 is
// exactly its s2 − s1² (the running population variance). Afterwards the
// mean follows the paper: a bucket the distribution makes unlikely (P_t
// near 0) moves it by only pewmaAlpha of the way, a likely one by up to
// 1 − 0.9·(1 − 0.399) ≈ 0.46, so that a spike barely shifts what is
// expected while a lasting level shift is learnt in a few buckets.
//
// The variance departs from the paper on purpose, in two ways. The paper
// weights it by the same a_t, which gives the buckets near the mean up to
// 4.4 times the weight of those in the tails and so underestimates σ: on
// Gaussian noise (β = 1) σ comes out at about 0.65 of the true deviation
// and about 10% of the buckets leave a 3σ band, an alert every few
// minutes. Here it has the plain weight v_t, which makes S2 the usual
// exponentially weighted variance around the expected value; on the same
// noise about 1% of the buckets leave the band (TestPEWMAFalseAlarmRate).
// And a deviation counts for at most pewmaClip·σ_t (winsorised, as robust
// estimators do), so that one spike does not triple σ and end its own
// incident on its second bucket: a spike lasting several buckets stays one
// firing incident, and a level shift of 10σ is learnt in about four
// buckets, as σ grows by at most a third per bucket while the mean moves.
//
// The floor on σ keeps a flat series (all buckets equal, zero variance)
// from dividing by zero: a flat series at 100 is judged with σ = 1, so
// it never fires while it stays flat, and a bucket at 104 after it
// scores 4. minSigmaAbs serves the all-zero series. The floor is also
// well above the rounding error of the updates.

// Detector parameters; see the comment above.
const (
	// pewmaAlpha is the weight of a new bucket in the plain EWMA.
	pewmaAlpha = 0.1
	// pewmaBeta is the weight of the bucket's probability P_t in the
	// mean's weight.
	pewmaBeta = 1.0
	// pewmaClip bounds, in σ, how far from the mean a bucket counts in
	// the variance.
	pewmaClip = 3.0
	// pewmaWarmup is how many buckets the detector learns from before it
	// judges any: no alert fires on them.
	pewmaWarmup = 30
	// minSigmaRel and minSigmaAbs floor σ at minSigmaRel·|expected| +
	// minSigmaAbs.
	minSigmaRel = 0.01
	minSigmaAbs = 1e-6
	// maxDetectorValue bounds the values the detector learns: a bucket
	// further from zero is skipped, so that its square (the variance)
	// stays finite.
	maxDetectorValue = 1e150
)

// pewmaVerdict is the detector's judgement of one bucket.
type pewmaVerdict struct {
	// expected, lower and upper are the value the detector expected and
	// its band; sigma its standard deviation (floored); score the
	// bucket's z-score.
	expected, lower, upper, sigma, score float64
	// side is above or below: where the value lies from expected
	// (AnomalyBoth when it equals it).
	side AnomalyDirection
	// warmingUp: the bucket was one of the first pewmaWarmup, which are
	// never anomalous.
	warmingUp bool
	// anomalous: outside the band, on a side the direction reports.
	anomalous bool
}

// observe judges x, the value of the next bucket, against what d has
// learnt, with sensitivity k and direction dir, and then learns x. It
// returns false, changing nothing, for a value that is not finite or is
// further from zero than maxDetectorValue.
func (d *DetectorState) observe(x, k float64, dir AnomalyDirection) (pewmaVerdict, bool) {
	if math.IsNaN(x) || math.Abs(x) > maxDetectorValue {
		return pewmaVerdict{}, false
	}
	v := pewmaVerdict{expected: d.S1, warmingUp: d.Buckets < pewmaWarmup}
	if d.Buckets == 0 {
		// Nothing learnt yet: x is what is expected.
		v.expected = x
	}
	v.sigma = math.Sqrt(max(d.S2, 0))
	v.sigma = max(v.sigma, minSigmaRel*math.Abs(v.expected)+minSigmaAbs)
	v.score = (x - v.expected) / v.sigma
	v.lower, v.upper = v.expected-k*v.sigma, v.expected+k*v.sigma
	switch {
	case x > v.expected:
		v.side = AnomalyAbove
	case x < v.expected:
		v.side = AnomalyBelow
	default:
		v.side = AnomalyBoth
	}
	if !v.warmingUp {
		switch dir {
		case AnomalyAbove:
			v.anomalous = v.score > k
		case AnomalyBelow:
			v.anomalous = v.score < -k
		default:
			v.anomalous = math.Abs(v.score) > k
		}
	}

	d.Buckets++
	var a, va float64 // the weights of the history in the mean and the variance
	if d.Buckets <= pewmaWarmup {
		a = 1 - 1/float64(d.Buckets)
		va = a
	} else {
		p := math.Exp(-v.score*v.score/2) / math.Sqrt(2*math.Pi)
		a = (1 - pewmaAlpha) * (1 - pewmaBeta*p)
		va = 1 - pewmaAlpha
	}
	diff := x - v.expected
	e := diff
	if !v.warmingUp {
		e = max(-pewmaClip*v.sigma, min(e, pewmaClip*v.sigma))
	}
	d.S1 = v.expected + (1-a)*diff
	d.S2 = va * (max(d.S2, 0) + (1-va)*e*e)
	return v, true
}
