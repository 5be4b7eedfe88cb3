// Package disposition keeps one record per server, its disposition, in an
// in-memory index that monitoring, configuration management, rollout planning
// and repair automation query.
//
// An Index is built from batches of changes and read through snapshots:
//
//	ix := disposition.NewIndex()
//	_, err := ix.Apply(ctx, disposition.Batch{Upserts: nodes})
//	snap := ix.Snapshot()
//	q, err := disposition.ParseQuery("metro=DEN,NYC role=edge health!=down")
//	edge, err := snap.Query(q)
//	byMetro, err := snap.Aggregate(q, "metro", "health")
//
// The index lives in go-memdb: a table of nodes keyed by ID, and a table of
// postings, one compressed bitmap (roaring) per indexed value: every text
// field but the ID, every label and every deployed version. A query
// intersects the bitmaps of its equality terms, smallest first, and
// subtracts those of its negations, so any combination of terms is indexed
// without compound indexes.
//
// Writes are applied only where a record changed (a traffic-only change
// touches no posting), in go-memdb transactions of at most MaxTxnRecords
// records, and published atomically: a snapshot sees either all of a batch
// or none of it. Every published batch bumps the index version. Watch gives
// one coarse signal per version, never one per record.
package disposition
