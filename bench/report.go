package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measured value, printed as a table row and as a JSON line.
type figure struct {
	Workload  string   `json:"workload"`
	Transport string   `json:"transport"`
	Store     string   `json:"store"`
	Broker    string   `json:"broker"`
	Processes int      `json:"processes"` // server processes on the store
	N         int      `json:"n"`
	Rate      int      `json:"rate,omitempty"` // W3: the step's target rate, per second
	Metric    string   `json:"metric"`
	Value     float64  `json:"value"`
	Target    *float64 `json:"target,omitempty"`
	// Cmp says how Value must compare with Target: "<=" or ">=".
	Cmp string `json:"cmp,omitempty"`
	Met *bool  `json:"met,omitempty"`

	// integrity marks a count that must be 0 for the run to pass: lost,
	// duplicated, misrouted, errors. The exit status depends on these only.
	integrity bool
}

// scope is the workload context figures are added in.
type scope struct {
	rep       *report
	workload  string
	transport string
	store     string
	broker    string
	processes int
	n         int
	rate      int
	targets   bool // whether this store has speed targets
}

func (s scope) with(workload string, n, rate int) scope {
	s.workload, s.n, s.rate = workload, n, rate
	return s
}

// add records a figure without a target.
func (s scope) add(metric string, v float64) {
	s.rep.add(figure{Workload: s.workload, Transport: s.transport, Store: s.store, Broker: s.broker,
		Processes: s.processes, N: s.n, Rate: s.rate, Metric: metric, Value: v})
}

// target records a figure with a speed target, which only the embedded
// default has; elsewhere it is a plain figure.
func (s scope) target(metric string, v float64, cmp string, target float64) {
	f := figure{Workload: s.workload, Transport: s.transport, Store: s.store, Broker: s.broker,
		Processes: s.processes, N: s.n, Rate: s.rate, Metric: metric, Value: v}
	if s.targets {
		f.setTarget(cmp, target)
	}
	s.rep.add(f)
}

// count records an integrity count: it must be 0 on every store.
func (s scope) count(metric string, v int) {
	f := figure{Workload: s.workload, Transport: s.transport, Store: s.store, Broker: s.broker,
		Processes: s.processes, N: s.n, Rate: s.rate, Metric: metric, Value: float64(v), integrity: true}
	f.setTarget("<=", 0)
	s.rep.add(f)
}

func (f *figure) setTarget(cmp string, target float64) {
	t := target
	met := f.Value <= t
	if cmp == ">=" {
		met = f.Value >= t
	}
	f.Target, f.Cmp, f.Met = &t, cmp, &met
}

// report collects figures and notes, and prints them.
type report struct {
	figures []figure
	notes   []string
	// toolErrors are failures of the tool or of the server process (not of
	// a speed target); any makes the exit status non-zero.
	toolErrors []string
	stream     io.Writer // notes and errors are also logged here as they come
}

func (r *report) add(f figure) {
	f.Value = round(f.Value)
	r.figures = append(r.figures, f)
}

func (r *report) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, s)
	if r.stream != nil {
		fmt.Fprintln(r.stream, "note:", s)
	}
}

func (r *report) toolError(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.toolErrors = append(r.toolErrors, s)
	if r.stream != nil {
		fmt.Fprintln(r.stream, "ERROR:", s)
	}
}

// integrityFailures lists the integrity figures that are not 0.
func (r *report) integrityFailures() []figure {
	var bad []figure
	for _, f := range r.figures {
		if f.integrity && f.Value != 0 {
			bad = append(bad, f)
		}
	}
	return bad
}

// ok reports whether nothing was lost, duplicated or misrouted and the tool
// did not fail; speed targets do not count.
func (r *report) ok() bool {
	return len(r.toolErrors) == 0 && len(r.integrityFailures()) == 0
}

// print writes the table, the notes and one JSON line per figure.
func (r *report) print(w io.Writer, header string, elapsed time.Duration) {
	fmt.Fprintln(w, header)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\ttransport\tstore\tn\trate/s\tfigure\tvalue\ttarget\tmet?")
	for _, f := range r.figures {
		target, met := "", ""
		if f.Target != nil {
			target = f.Cmp + " " + fmtValue(*f.Target)
			met = "no"
			if *f.Met {
				met = "yes"
			}
		}
		rate := ""
		if f.Rate > 0 {
			rate = fmt.Sprint(f.Rate)
		}
		store := f.Store
		if f.Broker != "inproc" {
			store += "+" + f.Broker
		}
		if f.Processes > 1 {
			store += fmt.Sprintf(" x%d", f.Processes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", f.Workload, f.Transport, store, f.N, rate,
			f.Metric, fmtValue(f.Value), target, met)
	}
	tw.Flush()
	for _, n := range r.notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, e := range r.toolErrors {
		fmt.Fprintln(w, "ERROR:", e)
	}
	for _, f := range r.integrityFailures() {
		fmt.Fprintf(w, "FAIL: %s %s %s n=%d%s %s = %v\n", f.Workload, f.Transport, f.Store, f.N, rateLabel(f.Rate), f.Metric, f.Value)
	}
	verdict := "PASS: nothing lost, duplicated or misrouted"
	if !r.ok() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s (speed targets are reported, never enforced); took %v\n", verdict, elapsed.Round(time.Second))
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, f := range r.figures {
		_ = enc.Encode(f)
	}
}

func rateLabel(rate int) string {
	if rate == 0 {
		return ""
	}
	return fmt.Sprintf(" rate=%d/s", rate)
}

func fmtValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

// round keeps two decimals, which is all a table needs.
func round(v float64) float64 { return math.Round(v*100) / 100 }

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-th percentile (0 < p <= 100) of sorted values,
// by the nearest-rank method; 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

// median returns the median of values (the mean of the middle two for an
// even count); it sorts values.
func median(values []time.Duration) time.Duration {
	if len(values) == 0 {
		return 0
	}
	slices.Sort(values)
	n := len(values)
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

// joinInts formats ints as "1,2,3".
func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
