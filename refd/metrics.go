package refd

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics, registered on
// Config.Registry.
type metrics struct {
	requests *prometheus.HistogramVec
	// Counted from the runner's events as refd's views take them.
	rolloutEventsTotal *prometheus.CounterVec
	deploysTotal       *prometheus.CounterVec
	deployedServers    *prometheus.CounterVec
}

func newMetrics(s *Server) (*metrics, error) {
	reg := s.cfg.Registry
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refd_http_request_duration_seconds",
			Help:    "API request latency by route, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method", "code"}),
		rolloutEventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refd_rollout_events_total",
			Help: "Events of the rollout runner's logs, by type.",
		}, []string{"type"}),
		deploysTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refd_rollout_deploys_total",
			Help: "Deployer calls the rollout runner recorded, by kind (wave or rollback) and result (ok, or error for a call that failed as a whole).",
		}, []string{"kind", "result"}),
		deployedServers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refd_rollout_deployed_servers_total",
			Help: "Servers the Deployer reported on, by kind (wave or rollback) and result (ok or failed).",
		}, []string{"kind", "result"}),
	}
	cs := []prometheus.Collector{
		m.requests, m.rolloutEventsTotal, m.deploysTotal, m.deployedServers,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "refd_index_version", Help: "Version of the disposition index.",
		}, func() float64 { return float64(s.cfg.Index.Version()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "refd_index_nodes", Help: "Nodes in the disposition index.",
		}, func() float64 { return float64(s.cfg.Index.Snapshot().Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "refd_ready", Help: "1 once an authoritative source has been fetched, until shutdown.",
		}, func() float64 {
			if s.Ready() {
				return 1
			}
			return 0
		}),
		&sourceCollector{s: s},
		&rolloutCollector{s: s},
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// rolloutEvents counts runner events new to refd's views.
func (m *metrics) rolloutEvents(events []RolloutEvent) {
	for _, e := range events {
		m.rolloutEventsTotal.WithLabelValues(string(e.Action)).Inc()
		kind := "wave"
		if e.Batch > 0 || e.Action == evRollbackDeploy {
			kind = "rollback"
		}
		switch e.Action {
		case evWaveDeployed, evRollbackDeploy:
			m.deploysTotal.WithLabelValues(kind, "ok").Inc()
			m.deployedServers.WithLabelValues(kind, "ok").Add(float64(e.Servers - e.Failed))
			m.deployedServers.WithLabelValues(kind, "failed").Add(float64(e.Failed))
		case evDeployError:
			m.deploysTotal.WithLabelValues(kind, "error").Inc()
		}
	}
}

func (m *metrics) observe(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Observe(d.Seconds())
}

var (
	descSourceFetch = prometheus.NewDesc("refd_source_fetch_duration_seconds",
		"Duration of the last fetch of each source.", []string{"source"}, nil)
	descSourceFetches = prometheus.NewDesc("refd_source_fetches_total",
		"Fetches of each source.", []string{"source"}, nil)
	descSourceErrors = prometheus.NewDesc("refd_source_errors_total",
		"Failed fetches of each source.", []string{"source"}, nil)
	descSourceStaleness = prometheus.NewDesc("refd_source_staleness_seconds",
		"Age of the data in use from each source (since its last successful fetch).", []string{"source"}, nil)
	descSourceStale = prometheus.NewDesc("refd_source_stale",
		"1 while a source's data is kept from an earlier fetch because later ones failed.", []string{"source"}, nil)
	descSourceLastSuccess = prometheus.NewDesc("refd_source_last_success_timestamp_seconds",
		"Unix time of each source's last successful fetch.", []string{"source"}, nil)
	descSourceOrphans = prometheus.NewDesc("refd_source_orphans",
		"Observations of servers no authoritative source knows, per source.", []string{"source"}, nil)

	descRolloutWaves = prometheus.NewDesc("refd_rollout_waves",
		"Waves in each rollout's plan.", []string{"rollout"}, nil)
	descRolloutDone = prometheus.NewDesc("refd_rollout_waves_done",
		"Waves each rollout has completed.", []string{"rollout"}, nil)
	descRolloutState = prometheus.NewDesc("refd_rollout_state",
		"1 for each rollout's current state.", []string{"rollout", "state"}, nil)
	descRolloutServers = prometheus.NewDesc("refd_rollout_servers",
		"Servers of each rollout by outcome: deployed, failed (counting against the budgets), planned (in waves not started), rolled_back.",
		[]string{"rollout", "outcome"}, nil)
)

// sourceCollector reports the Updater's source status at scrape time.
type sourceCollector struct{ s *Server }

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSourceFetch, descSourceFetches, descSourceErrors,
		descSourceStaleness, descSourceStale, descSourceLastSuccess, descSourceOrphans} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.sourceStatus() {
		ch <- prometheus.MustNewConstMetric(descSourceFetch, prometheus.GaugeValue, st.FetchSeconds, st.Name)
		ch <- prometheus.MustNewConstMetric(descSourceFetches, prometheus.CounterValue, float64(st.Fetches), st.Name)
		ch <- prometheus.MustNewConstMetric(descSourceErrors, prometheus.CounterValue, float64(st.Failures), st.Name)
		stale := 0.0
		if st.Stale {
			stale = 1
		}
		ch <- prometheus.MustNewConstMetric(descSourceStale, prometheus.GaugeValue, stale, st.Name)
		ch <- prometheus.MustNewConstMetric(descSourceOrphans, prometheus.GaugeValue, float64(st.Orphans), st.Name)
		if !st.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descSourceLastSuccess, prometheus.GaugeValue, float64(st.LastSuccess.UnixNano())/1e9, st.Name)
			ch <- prometheus.MustNewConstMetric(descSourceStaleness, prometheus.GaugeValue, st.StalenessSeconds, st.Name)
		}
	}
}

// rolloutCollector reports the stored rollouts' progress at scrape time.
type rolloutCollector struct{ s *Server }

func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRolloutWaves
	ch <- descRolloutDone
	ch <- descRolloutState
	ch <- descRolloutServers
}

func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := c.s.cfg.Store.Rollouts(ctx)
	if err != nil {
		c.s.log.Warn("metrics: reading rollouts", "err", err)
		return
	}
	for _, r := range all {
		ch <- prometheus.MustNewConstMetric(descRolloutWaves, prometheus.GaugeValue, float64(r.Waves), r.ID)
		ch <- prometheus.MustNewConstMetric(descRolloutDone, prometheus.GaugeValue, float64(r.WavesDone), r.ID)
		ch <- prometheus.MustNewConstMetric(descRolloutState, prometheus.GaugeValue, 1, r.ID, string(r.State))
		if r.RunnerSeq == 0 {
			continue
		}
		for _, o := range []struct {
			name string
			n    int
		}{{"deployed", r.Deployed}, {"failed", r.Failed}, {"planned", r.Planned}, {"rolled_back", r.RolledBack}} {
			ch <- prometheus.MustNewConstMetric(descRolloutServers, prometheus.GaugeValue, float64(o.n), r.ID, o.name)
		}
	}
}
