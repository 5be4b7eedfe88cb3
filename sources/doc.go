// Package sources assembles the disposition of every server from the
// systems that own pieces of it (inventory, provisioning, monitoring,
// traffic, alerting, configuration management, manual overrides) and keeps
// a disposition.Index up to date with the merged result.
//
// Each system plugs in through the narrow Source interface; the adapters
// live in the sub-packages (file, httpjson, netbox, maas, prometheus,
// alertmanager, saltapi, postgres).
//
// An Aggregator fetches the sources and writes what changed to the index:
//
//	cfg, err := sources.ParseConfig("refd.yaml", data)
//	srcs, err := sources.Build(cfg, sources.Registry{"file": file.Factory, "httpjson": httpjson.Factory})
//	agg, err := sources.NewAggregator(ix, cfg.Aggregator, srcs...)
//	err = agg.Refresh(ctx) // first load
//	go agg.Run(ctx)        // then each source on its own interval
//
// # Merging
//
// Authoritative sources (the inventory) say which nodes exist; the other
// sources enrich them, and what they report about nodes no authoritative
// source knows is counted as orphans in Status, never turned into nodes.
// For each node and field, the value comes from the first source in the
// field's precedence (AggregatorConfig.Precedence, by default the order
// the sources were registered in) that reports the field. Labels and
// versions are merged key by key in the same order. Every field records
// its provenance: the source, when that source first reported the
// current value, and whether the value is stale.
//
// A node's provenance only moves when its value does, so fetches that
// confirm what the index holds write nothing; only changed nodes and
// removals are applied to the index.
//
// # Failures
//
// A fetch that fails, times out, panics or is rejected leaves the
// source's last good observations in place, marked stale, so one failing
// source never blanks or shrinks the fleet. Past the source's MaxStale,
// counted from its last good fetch, its fields are dropped from every
// node (a health it gave becomes unknown). An authoritative source's
// nodes keep existing however long it fails; only its field values
// expire.
//
// A node missing from every authoritative source is kept, its provenance
// marked stale, for the grace period (AggregatorConfig.Grace), in case
// the inventory response was truncated, and removed after it. On top of
// that, the removal guard rejects any authoritative fetch that would
// start the grace period of more than AggregatorConfig.RemovalGuard of
// the fleet (default 10%): the fetch fails with a *GuardError and the
// source's previous observations stay in use until it returns a smaller
// change or an operator calls AllowRemovals. Nodes already in grace are
// not counted again, so a removal accepted by the guard goes through
// without another check when its grace period ends.
package sources
