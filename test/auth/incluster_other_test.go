//go:build e2e && !linux

package auth

import "testing"

// testInCluster needs Linux mount namespaces to put the service account
// files at their fixed paths without touching the machine.
func testInCluster(t *testing.T, _ env) {
	t.Skip("the in-cluster test needs Linux mount namespaces")
}
