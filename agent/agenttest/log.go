package agenttest

import (
	"log/slog"
	"testing"
)

// testLogger sends a member's logs to the test's output, labelled.
func testLogger(t testing.TB, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("m", name)
}
