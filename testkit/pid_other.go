//go:build !unix

package testkit

// processAlive cannot tell without unix signals: every process counts as
// alive, and only StaleAfter reaps.
func processAlive(int) bool { return true }
