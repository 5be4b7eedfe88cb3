package sources

// SetMergeWorkers sets how many goroutines a full merge uses, so that
// tests can compare the parallel merge with the sequential one.
func (a *Aggregator) SetMergeWorkers(n int) { a.mergeWorkers = n }
