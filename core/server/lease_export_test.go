package server

import (
	"bytes"
)

// TakeSnapshot captures the member's database as a Raft snapshot does.
func TakeSnapshot(s *Server) ([]byte, error) {
	snap, err := (*stateMachine)(s).Snapshot()
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// InstallSnapshot replaces the member's database with data, as a snapshot
// sent by the leader does.
func InstallSnapshot(s *Server, data []byte) error {
	return (*stateMachine)(s).Restore(bytes.NewReader(data))
}
