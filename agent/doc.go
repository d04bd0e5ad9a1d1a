// Package agent is Concord's composition root: it reads a member's
// configuration (YAML file, etcd's flags, CONCORD_* environment variables)
// and runs the member: the replicated core, the etcd gRPC API and its
// HTTP/JSON gateway on the client URLs, health and version endpoints, and
// an ordered shutdown.
//
// # Basics
//
// Parse or FromFlags produce a validated Config; Start runs a member from
// it and returns once the client listeners serve; Ready closes when the
// member has joined its cluster; Close stops serving clients and then the
// core (handing leadership over first). Run does all of that for the
// binary, until its context ends.
//
// # Caveats
//
// etcd options that Concord accepts but does not honour yet (TLS, quotas,
// socket options, ...) are refused at Start rather than ignored. One client
// port serves gRPC and HTTP/1 side by side, told apart by the first bytes of
// each connection; gRPC over plain TCP needs HTTP/2 with prior knowledge,
// which is how every gRPC client connects.
package agent
