package rollout

import (
	"slices"
	"time"
)

// span is a half-open interval [a, b) of Unix seconds.
type span struct{ a, b int64 }

// zoneSeg is a stretch [a, b) of Unix seconds over which a zone keeps one
// UTC offset (seconds east of UTC).
type zoneSeg struct{ a, b, off int64 }

// zoneSegments splits [from, to) where loc's offset changes, so callers
// can turn instants into wall-clock times with plain arithmetic.
func zoneSegments(loc *time.Location, from, to int64) []zoneSeg {
	var out []zoneSeg
	for t := from; t < to; {
		tt := time.Unix(t, 0).In(loc)
		_, off := tt.Zone()
		_, end := tt.ZoneBounds()
		b := to
		if !end.IsZero() && end.Unix() > t && end.Unix() < to {
			b = end.Unix()
		}
		out = append(out, zoneSeg{t, b, int64(off)})
		t = b
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// weekdayOfDay returns the weekday of day number d since 1970-01-01, a
// Thursday.
func weekdayOfDay(d int64) time.Weekday {
	w := (d + 4) % 7
	if w < 0 {
		w += 7
	}
	return time.Weekday(w)
}

// windowSpans returns the instants of [from, to) inside window w, whose
// wall clock is read in loc: for each stretch of constant offset, the
// wall-clock window of each local day maps back to UTC by subtracting the
// offset, so skipped hours vanish and repeated hours count twice.
func windowSpans(w Window, loc *time.Location, from, to int64, out []span) []span {
	var days [7]bool
	for _, d := range w.Days {
		days[d] = true
	}
	all := len(w.Days) == 0
	start, end := int64(w.Start)*60, int64(w.End)*60
	if end <= start {
		end += 86400
	}
	for _, sg := range zoneSegments(loc, from, to) {
		wa, wb := sg.a+sg.off, sg.b+sg.off
		for day := floorDiv(wa, 86400) - 1; day*86400 < wb; day++ {
			if !all && !days[weekdayOfDay(day)] {
				continue
			}
			s, e := max(day*86400+start, wa), min(day*86400+end, wb)
			if s < e {
				out = append(out, span{s - sg.off, e - sg.off})
			}
		}
	}
	return out
}

// normalise sorts spans and merges overlapping or touching ones.
func normalise(ss []span) []span {
	slices.SortFunc(ss, func(x, y span) int {
		switch {
		case x.a < y.a:
			return -1
		case x.a > y.a:
			return 1
		}
		return 0
	})
	out := ss[:0]
	for _, s := range ss {
		if s.b <= s.a {
			continue
		}
		if n := len(out); n > 0 && s.a <= out[n-1].b {
			out[n-1].b = max(out[n-1].b, s.b)
			continue
		}
		out = append(out, s)
	}
	return out
}

// subtract returns the parts of the normalised spans ss outside the
// normalised spans cut.
func subtract(ss, cut []span) []span {
	var out []span
	j := 0
	for _, s := range ss {
		a := s.a
		for j < len(cut) && cut[j].b <= a {
			j++
		}
		for k := j; k < len(cut) && cut[k].a < s.b; k++ {
			if cut[k].a > a {
				out = append(out, span{a, cut[k].a})
			}
			a = max(a, cut[k].b)
		}
		if a < s.b {
			out = append(out, span{a, s.b})
		}
	}
	return out
}

// metroWindows picks the windows that apply to a metro: its own, else its
// region's, else the global ones.
func metroWindows(ws []Window, region, metro string) []Window {
	var own, reg, glob []Window
	for _, w := range ws {
		switch {
		case w.Metro != "":
			if w.Metro == metro {
				own = append(own, w)
			}
		case w.Region != "":
			if w.Region == region {
				reg = append(reg, w)
			}
		default:
			glob = append(glob, w)
		}
	}
	switch {
	case own != nil:
		return own
	case reg != nil:
		return reg
	}
	return glob
}

// blackoutApplies reports whether a blackout covers a metro.
func blackoutApplies(b Blackout, region, metro string) bool {
	switch {
	case b.Metro != "":
		return b.Metro == metro
	case b.Region != "":
		return b.Region == region
	}
	return true
}
