// Package alertmanager is a fleetkit source that turns Alertmanager's
// active alerts (API v2, GET /api/v2/alerts) into node health: an alert's
// severity label says whether its node is down or degraded
// (DefaultSeverities), the worst alert wins, and the Observation's Note
// lists the alert names, which the aggregator keeps in provenance.
//
// The node is named by an alert label, "instance" by default, without
// its ":port". Silenced and inhibited alerts do not count unless asked.
//
//	src, err := alertmanager.New("alerts", alertmanager.Options{
//		URL:     "http://alertmanager:9093",
//		Filters: []string{`team="cdn"`},
//	})
//	obs, err := src.Fetch(ctx)
package alertmanager
