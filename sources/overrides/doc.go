// Package overrides is the source of manual overrides: an operator sets a
// server's lifecycle state or release state, with an owner, a reason and
// an expiry, and the override wins over every other source until it
// expires or is deleted.
//
// A Source is a sources.Source; register it with the highest precedence
// for the state and release_state fields (refd does so by default):
//
//	ov, err := overrides.New(ctx, overrides.Config{Store: store})
//	_, err = ov.Set(ctx, overrides.Override{
//		ID: "edge-den1-c07-001.fleet.example", State: disposition.StateDrained,
//		Owner: "alice", Reason: "NIC flapping, INC-1234", Expires: time.Now().Add(24 * time.Hour),
//	})
//	obs, err := ov.Fetch(ctx) // what the Aggregator merges
//
// Expired overrides vanish: Fetch and List leave them out and the next
// write removes them from the Store.
package overrides
