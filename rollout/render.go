package rollout

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Text returns the plan as text: a summary, a table per wave and the
// skipped and unschedulable targets counted by reason.
func (p *Plan) Text() string {
	var b bytes.Buffer
	_ = p.WriteText(&b) // a bytes.Buffer does not fail
	return b.String()
}

const timeFmt = "2006-01-02 15:04 MST"

// WriteText writes the plan as Text does.
func (p *Plan) WriteText(w io.Writer) error {
	var b bytes.Buffer
	name := p.Name
	if name == "" {
		name = "rollout"
	}
	fmt.Fprintf(&b, "%s: %s in %s, %s to %s (%v)\n", name, plural(p.Total, "server"), plural(len(p.Waves), "wave"),
		p.Start.UTC().Format(timeFmt), p.End.UTC().Format(timeFmt), p.End.Sub(p.Start))
	fmt.Fprintf(&b, "bounds: %s\n", p.Bounds)
	for _, wv := range p.Waves {
		fmt.Fprintf(&b, "\nwave %d (%s): %s (step %d, bound by %s), %s to %s, deploy %v + bake %v\n",
			wv.Index, wv.Stage, plural(len(wv.Servers), "server"), wv.Step, wv.BoundBy,
			wv.Start.UTC().Format(timeFmt), wv.End.UTC().Format(timeFmt), time.Duration(p.Deploy), time.Duration(wv.Bake))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  metro\tregion\tlocal start\tservers\tout Gbps\tcapacity Gbps\tdip\tforecast Gbps\t")
		for _, m := range wv.Metros {
			fc := "-"
			if m.ForecastGbps > 0 {
				fc = fmt.Sprintf("%.1f", m.ForecastGbps)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%.1f\t%.1f\t%.1f%%\t%s\t\n",
				m.Metro, m.Region, m.LocalStart, m.Servers, m.OutGbps, m.CapacityGbps, 100*m.Dip, fc)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, sec := range []struct {
		title string
		list  []Skip
	}{{"skipped", p.Skipped}, {"unschedulable", p.Unschedulable}} {
		if len(sec.list) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %d\n", sec.title, len(sec.list))
		counts := map[string]int{}
		for _, s := range sec.list {
			counts[s.Reason]++
		}
		reasons := make([]string, 0, len(counts))
		for r := range counts {
			reasons = append(reasons, r)
		}
		slices.SortFunc(reasons, func(a, b string) int {
			if counts[a] != counts[b] {
				return counts[b] - counts[a]
			}
			return strings.Compare(a, b)
		})
		for _, r := range reasons {
			fmt.Fprintf(&b, "  %6d  %s\n", counts[r], r)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Locate returns the index in Waves of the wave holding server id, with
// the metro it is in, or -1.
func (p *Plan) Locate(id string) (wave int, metro string) {
	for i, wv := range p.Waves {
		off := 0
		for _, m := range wv.Metros {
			seg := wv.Servers[off:min(off+m.Servers, len(wv.Servers))]
			if _, ok := slices.BinarySearch(seg, id); ok {
				return i, m.Metro
			}
			off += m.Servers
		}
	}
	return -1, ""
}

// Explain says when and why the plan schedules server id, or why it does
// not.
func (p *Plan) Explain(id string) string {
	if i, ok := slices.BinarySearchFunc(p.Skipped, id, func(s Skip, id string) int { return strings.Compare(s.ID, id) }); ok {
		return fmt.Sprintf("%s is skipped: %s", id, p.Skipped[i].Reason)
	}
	if i, ok := slices.BinarySearchFunc(p.Unschedulable, id, func(s Skip, id string) int { return strings.Compare(s.ID, id) }); ok {
		return fmt.Sprintf("%s cannot be scheduled: %s", id, p.Unschedulable[i].Reason)
	}
	wi, metro := p.Locate(id)
	if wi < 0 {
		return fmt.Sprintf("%s is not a target of this plan", id)
	}
	wv := &p.Waves[wi]
	var wm WaveMetro
	for _, m := range wv.Metros {
		if m.Metro == metro {
			wm = m
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is in wave %d of %d (%s): %s of metro %s (%s), %d in all.\n",
		id, wv.Index, len(p.Waves), wv.Stage, plural(wm.Servers, "server"), metro, wm.Region, len(wv.Servers))
	fmt.Fprintf(&b, "It is out of service from %s to %s", wv.Start.UTC().Format(timeFmt), wv.Start.Add(time.Duration(p.Deploy)).UTC().Format(timeFmt))
	if wm.LocalStart != "" {
		fmt.Fprintf(&b, " (starting %s local time)", wm.LocalStart)
	}
	fmt.Fprintf(&b, ", then bakes until %s.\n", wv.End.UTC().Format(timeFmt))
	fmt.Fprintf(&b, "The wave's size was set by %s (growth step %d).\n", wv.BoundBy, wv.Step)
	fmt.Fprintf(&b, "Metro %s loses %.1f of %.1f Gbps (%.1f%%)", metro, wm.OutGbps, wm.CapacityGbps, 100*wm.Dip)
	if wm.ForecastGbps > 0 {
		fmt.Fprintf(&b, " against a forecast of %.1f Gbps", wm.ForecastGbps)
	}
	b.WriteString(".")
	if wi > 0 {
		prev := 0
		for _, w := range p.Waves[:wi] {
			for _, m := range w.Metros {
				if m.Metro == metro {
					prev++
				}
			}
		}
		fmt.Fprintf(&b, "\nMetro %s was in %s; a wave starts when the previous one's bake ends or, later, when the metros it takes servers from are next open.", metro, plural(prev, "earlier wave"))
	}
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
