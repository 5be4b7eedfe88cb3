// Package boltstore is the embedded default rollout.Store: every rollout's
// event log in one local bbolt file, each record checksummed.
//
//	store, err := boltstore.Open("/var/lib/refd/rollouts.db", nil)
//	defer store.Close()
//	runner, err := rollout.NewRunner(rollout.RunnerConfig{Store: store, Fleet: ix, Deployer: d})
//
// An Append is one bbolt read-write transaction, fsynced by its commit
// before it returns, so an event the Runner wrote is on disk before it
// acts on it. Reads are bbolt read transactions: they see a consistent
// log and run concurrently with the writer.
//
// Damage is reported, never papered over. Open refuses an empty file, a
// file shorter than its last transaction needs and a file whose bbolt
// meta pages are both invalid, and (unless Options.SkipVerify) reads every
// record once. Every read checks that a rollout's records are numbered
// 1, 2, 3, ... without gaps and that each record's CRC-32C matches, and
// bbolt's own failures on a damaged page (panics, memory faults on a
// page past the end of the file) are turned into errors. All of these
// wrap rollout.ErrCorrupt and name the file, and the rollout and sequence
// number when the damage is in a record.
//
// One limit comes from bbolt: it keeps two meta pages and falls back to
// the older one when the newer fails its checksum, which is how it
// survives a crash in the middle of a commit; a meta page damaged after
// the commit completed therefore loses that one commit without an error.
package boltstore
