// Command customsource writes a source of its own: a maintenance ticket
// system that puts the servers of open tickets into maintenance, labels
// them with the ticket, and wins the lifecycle state over the inventory.
//
// A source is two methods, Name and Fetch; Fetch returns one Observation
// per server with only the fields the source knows. The aggregator does
// the rest: precedence, provenance, orphans (tickets for servers the
// inventory does not know), stale-on-error.
//
//	go run ./examples/customsource
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// Ticket is an open maintenance ticket, as the ticket system's API would
// return it.
type Ticket struct {
	ID    string    `json:"id"`
	Hosts []string  `json:"hosts"`
	Until time.Time `json:"until"`
}

// TicketSource reports the servers of open tickets as in maintenance. It
// reads its tickets through a function, here a fixed JSON document, in
// real life an HTTP call honouring ctx.
type TicketSource struct {
	Tickets func(ctx context.Context) ([]byte, error)
	Now     func() time.Time
}

// Name implements sources.Source.
func (s *TicketSource) Name() string { return "tickets" }

// Fetch implements sources.Source.
func (s *TicketSource) Fetch(ctx context.Context) ([]sources.Observation, error) {
	b, err := s.Tickets(ctx)
	if err != nil {
		return nil, fmt.Errorf("tickets: %w", err)
	}
	var ts []Ticket
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("tickets: decoding: %w", err)
	}
	now := s.Now()
	seen := map[string]bool{}
	var out []sources.Observation
	for _, t := range ts {
		if !t.Until.After(now) {
			continue // closed
		}
		for _, h := range t.Hosts {
			if seen[h] {
				continue // one observation per server: the first ticket wins
			}
			seen[h] = true
			o := sources.Observe(h).State(disposition.StateMaintenance).Label("ticket", t.ID)
			o.Note = "ticket " + t.ID + " until " + t.Until.Format(time.RFC3339)
			out = append(out, *o)
		}
	}
	return out, nil
}

// InventorySource serves a generated fleet as an inventory would.
type InventorySource struct{ Fleet *fleet.Fleet }

// Name implements sources.Source.
func (s *InventorySource) Name() string { return "inventory" }

// Fetch implements sources.Source.
func (s *InventorySource) Fetch(ctx context.Context) ([]sources.Observation, error) {
	out := make([]sources.Observation, 0, len(s.Fleet.Nodes))
	for _, n := range s.Fleet.Nodes {
		out = append(out, *sources.Observe(n.ID).Metro(n.Metro).Site(n.Site).Cluster(n.Cluster).
			Role(n.Role).State(n.State).Health(n.Health))
	}
	return out, ctx.Err()
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "customsource:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	f, err := fleet.Generate(fleet.Config{Size: 500, Seed: 3})
	if err != nil {
		return err
	}
	now := f.Config.Start
	a, b, c := f.Nodes[10].ID, f.Nodes[11].ID, f.Nodes[200].ID
	tickets := fmt.Sprintf(`[
  {"id": "MNT-101", "hosts": [%q, %q], "until": %q},
  {"id": "MNT-102", "hosts": [%q, "gone-host.fleet.example"], "until": %q},
  {"id": "MNT-090", "hosts": [%q], "until": %q}
]`, a, b, now.Add(4*time.Hour).Format(time.RFC3339),
		c, now.Add(time.Hour).Format(time.RFC3339),
		f.Nodes[300].ID, now.Add(-time.Hour).Format(time.RFC3339))

	ts := &TicketSource{
		Tickets: func(context.Context) ([]byte, error) { return []byte(tickets), nil },
		Now:     func() time.Time { return now },
	}
	ix := disposition.NewIndex()
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{
		// The ticket system knows better than the inventory whether a
		// server is in maintenance.
		Precedence: map[disposition.Field][]string{disposition.FieldState: {"tickets", "inventory"}},
	},
		sources.Registered{Source: &InventorySource{Fleet: f}, Authoritative: true},
		sources.Registered{Source: ts},
	)
	if err != nil {
		return err
	}
	if err := agg.Refresh(ctx); err != nil {
		return err
	}
	snap := ix.Snapshot()
	q, err := disposition.ParseQuery("label.ticket=MNT-101,MNT-102,MNT-090")
	if err != nil {
		return err
	}
	nodes, err := snap.Query(q)
	if err != nil {
		return err
	}
	fmt.Printf("%d servers under an open ticket:\n", len(nodes))
	for _, n := range nodes {
		st := n.Provenance.Of(disposition.FieldState)
		fmt.Printf("  %-34s %-12s ticket %s (state from %s: %s)\n", n.ID, n.State, n.Labels["ticket"], st.Source, st.Note)
	}
	for _, s := range agg.Status() {
		if s.Orphans > 0 {
			fmt.Printf("source %s reports %d server(s) the inventory does not know: %v\n", s.Name, s.Orphans, s.OrphanSample)
		}
	}
	if len(nodes) != 3 {
		return fmt.Errorf("want 3 servers under open tickets, got %d", len(nodes))
	}
	return nil
}
