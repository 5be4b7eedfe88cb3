package refd

import (
	"context"
	"net/http"

	"github.com/fleetkit/fleetkit/sources"
)

// Updater keeps the index up to date from the sources and reports on
// them. *sources.Aggregator is one.
type Updater interface {
	// Run fetches the sources on their schedules and applies the merged
	// result to the index until ctx ends.
	Run(ctx context.Context) error
	// Refresh fetches every source once now and applies the result, e.g.
	// right after an override changed.
	Refresh(ctx context.Context) error
	// Status reports on every source, in configuration order.
	Status() []sources.SourceStatus
}

var _ Updater = (*sources.Aggregator)(nil)

// SourceStatus is what GET /v1/sources says about one source: the
// aggregator's status and figures derived from it.
type SourceStatus struct {
	sources.SourceStatus
	// Stale is set while the source's fields are kept from an earlier
	// fetch because later ones failed.
	Stale bool `json:"stale"`
	// StalenessSeconds is the age of the data in use: the time since the
	// last successful fetch (0 before the first).
	StalenessSeconds float64 `json:"staleness_seconds"`
	// FetchSeconds is how long the last fetch round took.
	FetchSeconds float64 `json:"fetch_seconds"`
}

// SourcesResult is the body of GET /v1/sources.
type SourcesResult struct {
	Version uint64         `json:"version"`
	Ready   bool           `json:"ready"`
	Sources []SourceStatus `json:"sources"`
}

func (s *Server) sourceStatus() []SourceStatus {
	out := []SourceStatus{}
	if s.cfg.Updater == nil {
		return out
	}
	now := s.cfg.Now()
	for _, st := range s.cfg.Updater.Status() {
		ss := SourceStatus{SourceStatus: st, Stale: !st.StaleSince.IsZero(), FetchSeconds: st.Duration.Seconds()}
		if !st.LastSuccess.IsZero() {
			ss.StalenessSeconds = max(0, now.Sub(st.LastSuccess).Seconds())
		}
		out = append(out, ss)
	}
	return out
}

func (s *Server) handleSources(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, SourcesResult{
		Version: s.cfg.Index.Version(),
		Ready:   s.Ready(),
		Sources: s.sourceStatus(),
	})
	return nil
}
