package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks every value and the relations between them: URL syntax,
// enumerations and ranges, election-timeout against heartbeat-interval, this
// member in initial-cluster, TLS files and URL schemes together, and more.
// It reports every problem at once; each names its key and, when the value
// came from a file, the file and line.
func (c *Config) Validate() error {
	return joinKeyErrors(c.validate())
}

func (c *Config) validate() []*KeyError {
	v := &validator{c: c, ok: map[string]bool{}}
	v.member()
	v.network()
	v.cluster()
	v.raft()
	v.store()
	v.grpc()
	v.auth()
	v.tls()
	v.log()
	return v.errs
}

// validator collects problems; ok records the URL keys that checked out, so
// that relations are checked only between values that parse.
type validator struct {
	c    *Config
	errs []*KeyError
	ok   map[string]bool
}

// fail reports a problem with key at where key's value came from.
func (v *validator) fail(key string, kind error, format string, args ...any) {
	v.failAt(key, key, kind, format, args...)
}

// failAt reports a problem with key, located where the first of whereKeys
// that the user set came from: the value to change.
func (v *validator) failAt(whereKeys, key string, kind error, format string, args ...any) {
	var src origin
	for wk := range strings.SplitSeq(whereKeys, ",") {
		if s, ok := v.c.origins[wk]; ok {
			src = s
			break
		}
	}
	v.errs = append(v.errs, &KeyError{Where: src.where, Key: key, Msg: key + ": " + fmt.Sprintf(format, args...), Kind: kind, src: src})
}

func (v *validator) member() {
	c := v.c
	v.ok["name"] = false
	switch {
	case c.Name == "":
		v.fail("name", ErrBadValue, "must not be empty")
	case strings.ContainsAny(c.Name, ",= \t"):
		v.fail("name", ErrBadValue, "%q has a comma, '=' or space, which initial-cluster cannot hold", c.Name)
	default:
		v.ok["name"] = true
	}
	if c.DataDir == "" {
		v.fail("data-dir", ErrBadValue, "must not be empty")
	}
}

// urlRole is what a URL is for; it decides which hosts are acceptable and
// what a placeholder should be replaced with.
type urlRole int

const (
	roleListen urlRole = iota
	roleAdvertiseClient
	roleAdvertisePeer
	roleInitialCluster
)

func (r urlRole) hint() string {
	switch r {
	case roleListen:
		return "the IP address to listen on (0.0.0.0 for every interface)"
	case roleAdvertiseClient:
		return "an address of this node that clients can reach"
	case roleAdvertisePeer:
		return "an address of this node that the other members can reach"
	default:
		return "that member's peer address"
	}
}

// placeholderPattern finds template placeholders left in a value:
// <NODE-IP>, {{ip}}, ${IP}, $IP.
var placeholderPattern = regexp.MustCompile(`<[^<>]*>|\{\{[^{}]*\}\}|\$\{[^{}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// checkURL returns what is wrong with raw as a URL for role, or "".
func checkURL(raw string, role urlRole) string {
	if m := placeholderPattern.FindString(raw); m != "" {
		return fmt.Sprintf("%q: %s is a placeholder: replace it with %s", raw, m, role.hint())
	}
	if !strings.Contains(raw, "://") {
		example := "http://10.0.0.1:2379"
		if _, _, err := net.SplitHostPort(raw); err == nil {
			example = "http://" + raw
		}
		return fmt.Sprintf("%q: want scheme://host:port, such as %q", raw, example)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("%q is not a URL: %v", raw, err)
	}
	switch u.Scheme {
	case "unix", "unixs":
		if u.Host == "" && u.Path == "" {
			return fmt.Sprintf("%q: want unix://socket-path", raw)
		}
		return ""
	case "http", "https":
	default:
		return fmt.Sprintf("%q: want scheme http, https, unix or unixs, got %q", raw, u.Scheme)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Sprintf("%q: want only scheme://host:port, without a path", raw)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return fmt.Sprintf("%q has no port (want scheme://host:port)", raw)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Sprintf("%q: port %q is not a number from 0 to 65535", raw, port)
	}
	ip := net.ParseIP(host)
	switch {
	case role == roleListen && host == "":
		return fmt.Sprintf("%q: a listen URL needs an IP address (0.0.0.0 for every interface)", raw)
	case role == roleListen && ip == nil && host != "localhost":
		return fmt.Sprintf("%q: a listen URL needs an IP address or localhost, not the host name %q", raw, host)
	case role != roleListen && host == "":
		return fmt.Sprintf("%q has no host", raw)
	case role != roleListen && ip != nil && ip.IsUnspecified():
		return fmt.Sprintf("%q: %s is not an address anyone can connect to: use %s", raw, host, role.hint())
	case ip == nil && !validHostName(host):
		return fmt.Sprintf("%q: %q is not a valid host name", raw, host)
	}
	return ""
}

func validHostName(h string) bool {
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return h != ""
}

// urls checks one list of URLs and records whether it is good.
func (v *validator) urls(key string, list []string, role urlRole, required bool) {
	good := true
	seen := map[string]bool{}
	for _, raw := range list {
		if p := checkURL(raw, role); p != "" {
			v.fail(key, ErrBadValue, "%s", p)
			good = false
		} else if seen[raw] {
			v.fail(key, ErrBadValue, "%q is listed twice", raw)
			good = false
		}
		seen[raw] = true
	}
	if required && len(list) == 0 {
		v.fail(key, ErrBadValue, "must not be empty")
		good = false
	}
	v.ok[key] = good
}

// unspecifiedListen returns the first URL of list that listens on every
// interface, or "".
func unspecifiedListen(list []string) string {
	for _, raw := range list {
		if u, err := url.Parse(raw); err == nil {
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
				return raw
			}
		}
	}
	return ""
}

func (v *validator) network() {
	n := &v.c.Network
	v.urls("listen-client-urls", n.ListenClientURLs, roleListen, true)
	v.urls("listen-peer-urls", n.ListenPeerURLs, roleListen, true)
	v.urls("listen-metrics-urls", v.c.Metrics.ListenURLs, roleListen, false)
	v.advertise("advertise-client-urls", "listen-client-urls", n.AdvertiseClientURLs, n.ListenClientURLs, roleAdvertiseClient, "clients")
	v.advertise("initial-advertise-peer-urls", "listen-peer-urls", n.InitialAdvertisePeerURLs, n.ListenPeerURLs, roleAdvertisePeer, "the other members")
}

func (v *validator) advertise(key, listenKey string, list, listen []string, role urlRole, who string) {
	if len(list) == 0 {
		v.ok[key] = false
		if all := unspecifiedListen(listen); all != "" {
			v.failAt(key+","+listenKey, key, ErrConflict,
				"required when %s listens on every interface (%q): set the URL %s should use to reach this member", listenKey, all, who)
		} else {
			v.fail(key, ErrBadValue, "must not be empty")
		}
		return
	}
	v.urls(key, list, role, true)
}

func (v *validator) cluster() {
	c := v.c
	cl := &c.Cluster
	switch cl.InitialClusterState {
	case ClusterStateNew, ClusterStateExisting:
	default:
		v.fail("initial-cluster-state", ErrBadValue, "want %q or %q, got %q", ClusterStateNew, ClusterStateExisting, cl.InitialClusterState)
	}
	if cl.InitialClusterToken == "" {
		v.fail("initial-cluster-token", ErrBadValue, "must not be empty")
	}
	if cl.MaxLearners < 0 {
		v.fail("max-learners", ErrBadValue, "must not be negative, got %d", cl.MaxLearners)
	}
	if !v.ok["name"] && !c.isSet("initial-cluster") {
		return // derived from the bad name: nothing more to say
	}
	if strings.TrimSpace(cl.InitialCluster) == "" {
		if v.ok["initial-advertise-peer-urls"] {
			v.fail("initial-cluster", ErrBadValue, "must not be empty: list every member as name=peerURL")
		}
		return
	}
	members, err := cl.InitialMembers()
	if err != nil {
		v.fail("initial-cluster", ErrBadValue, "%v", err)
		return
	}
	good := true
	owner := map[string]string{}
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if p := checkURL(u, roleInitialCluster); p != "" {
				v.fail("initial-cluster", ErrBadValue, "%s=%s", m.Name, p)
				good = false
				continue
			}
			switch other, dup := owner[u]; {
			case dup && other == m.Name:
				v.fail("initial-cluster", ErrBadValue, "%s lists %q twice", m.Name, u)
				good = false
			case dup:
				v.fail("initial-cluster", ErrConflict, "%q is the peer URL of both %s and %s", u, other, m.Name)
				good = false
			}
			owner[u] = m.Name
		}
	}
	if !good {
		return
	}
	names := make([]string, len(members))
	var self *InitialMember
	for i := range members {
		names[i] = members[i].Name
		if members[i].Name == c.Name {
			self = &members[i]
		}
	}
	switch {
	case self == nil:
		v.failAt("initial-cluster,name", "initial-cluster", ErrConflict,
			"has no entry for this member's name %q (it lists %s)", c.Name, strings.Join(names, ", "))
	case v.ok["initial-advertise-peer-urls"] && !sameURLs(self.PeerURLs, c.Network.InitialAdvertisePeerURLs):
		v.failAt("initial-cluster,initial-advertise-peer-urls", "initial-cluster", ErrConflict,
			"%s=%s does not match initial-advertise-peer-urls (%s)", c.Name, strings.Join(self.PeerURLs, ","), strings.Join(c.Network.InitialAdvertisePeerURLs, ","))
	}
	if cl.InitialClusterState == ClusterStateExisting && len(members) == 1 && self != nil {
		v.failAt("initial-cluster,initial-cluster-state", "initial-cluster", ErrConflict,
			"initial-cluster-state is existing, but initial-cluster lists only this member: list the running members too (as \"member add\" prints them)")
	}
	if c.Dev {
		if len(members) > 1 {
			v.failAt("initial-cluster,dev", "initial-cluster", ErrConflict, "dev mode runs one node, but it lists %d members", len(members))
		}
		if cl.InitialClusterState == ClusterStateExisting {
			v.failAt("initial-cluster-state,dev", "initial-cluster-state", ErrConflict, "dev mode bootstraps a new one-node cluster; want %q", ClusterStateNew)
		}
	}
}

func sameURLs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// maxElectionTimeout is etcd's upper bound on election-timeout.
const maxElectionTimeout = 50 * time.Second

func (v *validator) raft() {
	r := &v.c.Raft
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	if r.HeartbeatInterval < time.Millisecond {
		v.fail("heartbeat-interval", ErrBadValue, "want at least 1 (milliseconds), got %d", ms(r.HeartbeatInterval))
	}
	if r.ElectionTimeout < time.Millisecond {
		v.fail("election-timeout", ErrBadValue, "want at least 1 (milliseconds), got %d", ms(r.ElectionTimeout))
	}
	if r.HeartbeatInterval >= time.Millisecond && r.ElectionTimeout >= time.Millisecond && r.ElectionTimeout < 5*r.HeartbeatInterval {
		v.failAt("election-timeout,heartbeat-interval", "election-timeout", ErrConflict,
			"%d ms is less than 5 × heartbeat-interval (%d ms): raise it to at least %d",
			ms(r.ElectionTimeout), ms(r.HeartbeatInterval), ms(5*r.HeartbeatInterval))
	}
	if r.ElectionTimeout > maxElectionTimeout {
		v.fail("election-timeout", ErrBadValue, "%d ms is more than the maximum, %d", ms(r.ElectionTimeout), ms(maxElectionTimeout))
	}
	if r.SnapshotCount == 0 {
		v.fail("snapshot-count", ErrBadValue, "want at least 1, got 0")
	}
	if r.SnapshotCatchUpEntries == 0 {
		v.fail("snapshot-catchup-entries", ErrBadValue, "want at least 1, got 0")
	}
}

func (v *validator) store() {
	s := &v.c.Store
	if s.MaxTxnOps < 1 {
		v.fail("max-txn-ops", ErrBadValue, "want at least 1, got %d", s.MaxTxnOps)
	}
	if s.MaxRequestBytes < 1 {
		v.fail("max-request-bytes", ErrBadValue, "want at least 1, got %d", s.MaxRequestBytes)
	}
	switch s.AutoCompactionMode {
	case CompactionPeriodic, CompactionRevision:
		if _, _, err := s.CompactionRetention(); err != nil {
			v.failAt("auto-compaction-retention,auto-compaction-mode", "auto-compaction-retention", ErrBadValue, "%v", err)
		}
	default:
		v.fail("auto-compaction-mode", ErrBadValue, "want %q or %q, got %q", CompactionPeriodic, CompactionRevision, s.AutoCompactionMode)
	}
	if s.WatchProgressNotifyInterval <= 0 {
		v.fail("watch-progress-notify-interval", ErrBadValue, "want a positive duration, got %s", formatDuration(s.WatchProgressNotifyInterval))
	}
	if s.LeaseRevokeRate < 1 {
		v.fail("lease-revoke-rate", ErrBadValue, "want at least 1 (per second), got %d", s.LeaseRevokeRate)
	}
}

func (v *validator) grpc() {
	g := &v.c.GRPC
	for _, k := range []struct {
		key string
		d   time.Duration
	}{
		{"grpc-keepalive-min-time", g.KeepAliveMinTime},
		{"grpc-keepalive-interval", g.KeepAliveInterval},
		{"grpc-keepalive-timeout", g.KeepAliveTimeout},
	} {
		if k.d < 0 {
			v.fail(k.key, ErrBadValue, "must not be negative, got %s", formatDuration(k.d))
		}
	}
	if g.MaxConcurrentStreams == 0 {
		v.fail("max-concurrent-streams", ErrBadValue, "want at least 1, got 0")
	}
}

// jwtSignMethods are the signing methods etcd's JWT tokens accept.
func jwtSignMethods() []string {
	return []string{
		"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
		"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
	}
}

func (v *validator) auth() {
	a := &v.c.Auth
	if p := checkAuthToken(a.Token); p != "" {
		v.fail("auth-token", ErrBadValue, "%s", p)
	}
	if a.TokenTTL < time.Second {
		v.fail("auth-token-ttl", ErrBadValue, "want at least 1 (seconds), got %d", int64(a.TokenTTL/time.Second))
	}
	if a.BcryptCost < 4 || a.BcryptCost > 31 {
		v.fail("bcrypt-cost", ErrBadValue, "want 4 to 31, got %d", a.BcryptCost)
	}
}

// checkAuthToken returns what is wrong with an auth-token value, or "".
func checkAuthToken(token string) string {
	kind, rest, _ := strings.Cut(token, ",")
	switch kind {
	case "simple":
		if rest != "" {
			return fmt.Sprintf("%q: simple takes no options", token)
		}
		return ""
	case "jwt":
	default:
		return fmt.Sprintf(`want "simple" or "jwt,sign-method=...,pub-key=...,priv-key=...", got %q `+
			`(auth-token chooses the kind of token the server issues; it is not a shared secret)`, token)
	}
	opts := map[string]string{}
	for opt := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(opt, "=")
		switch {
		case !ok:
			return fmt.Sprintf("jwt option %q: want key=value", opt)
		case !slices.Contains([]string{"sign-method", "pub-key", "priv-key", "ttl"}, k):
			return fmt.Sprintf("jwt option %q: want sign-method, pub-key, priv-key or ttl", k)
		}
		if _, dup := opts[k]; dup {
			return fmt.Sprintf("jwt option %q is given twice", k)
		}
		opts[k] = val
	}
	method := opts["sign-method"]
	if !slices.Contains(jwtSignMethods(), method) {
		return fmt.Sprintf("jwt sign-method: want one of %s, got %q", strings.Join(jwtSignMethods(), ", "), method)
	}
	if ttl, ok := opts["ttl"]; ok {
		if d, err := time.ParseDuration(ttl); err != nil || d <= 0 {
			return fmt.Sprintf("jwt ttl: want a positive duration such as \"5m\", got %q", ttl)
		}
	}
	if strings.HasPrefix(method, "HS") && opts["priv-key"] == "" {
		return fmt.Sprintf("jwt sign-method %s needs priv-key (the shared HMAC key file)", method)
	}
	if opts["pub-key"] == "" && opts["priv-key"] == "" {
		return fmt.Sprintf("jwt sign-method %s needs pub-key, priv-key or both", method)
	}
	for _, k := range []string{"pub-key", "priv-key"} {
		if path := opts[k]; path != "" {
			if p := checkReadable(path); p != "" {
				return "jwt " + k + ": " + p
			}
		}
	}
	return ""
}

// checkReadable returns why the file at path cannot be read, or "".
func checkReadable(path string) string {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Sprintf("%q: %v", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return fmt.Sprintf("%q is a directory, not a file", path)
	}
	return ""
}

func (v *validator) tls() {
	t := &v.c.TLS
	v.transport(secClientTLS, "listen-client-urls", "client", &t.Client, v.c.Network.ListenClientURLs)
	v.transport(secPeerTLS, "listen-peer-urls", "peer", &t.Peer, v.c.Network.ListenPeerURLs)

	versions := []string{"TLS1.2", "TLS1.3"}
	if !slices.Contains(versions, t.MinVersion) {
		v.fail("tls-min-version", ErrBadValue, "want TLS1.2 or TLS1.3, got %q", t.MinVersion)
	}
	if t.MaxVersion != "" && !slices.Contains(versions, t.MaxVersion) {
		v.fail("tls-max-version", ErrBadValue, "want TLS1.2, TLS1.3 or empty, got %q", t.MaxVersion)
	}
	if t.MinVersion == "TLS1.3" && t.MaxVersion == "TLS1.2" {
		v.failAt("tls-max-version,tls-min-version", "tls-max-version", ErrConflict, "TLS1.2 is below tls-min-version TLS1.3")
	}
	if len(t.CipherSuites) > 0 && t.MinVersion == "TLS1.3" {
		v.failAt("cipher-suites,tls-min-version", "cipher-suites", ErrConflict, "TLS 1.3's suites cannot be chosen: with tls-min-version TLS1.3 leave cipher-suites empty")
	}
	secure, insecure := cipherSuiteNames()
	for _, name := range t.CipherSuites {
		switch {
		case slices.Contains(secure, name):
		case slices.Contains(insecure, name):
			v.fail("cipher-suites", ErrBadValue, "%s is insecure", name)
		default:
			if s := suggest(name, secure); s != "" {
				v.fail("cipher-suites", ErrBadValue, "unknown cipher suite %q (did you mean %q?)", name, s)
			} else {
				v.fail("cipher-suites", ErrBadValue, "unknown cipher suite %q", name)
			}
		}
	}
	if t.SelfSignedCertValidity < 1 {
		v.fail("self-signed-cert-validity", ErrBadValue, "want at least 1 (years), got %d", t.SelfSignedCertValidity)
	}
}

// cipherSuiteNames lists Go's TLS 1.2 cipher suites by name.
func cipherSuiteNames() (secure, insecure []string) {
	for _, s := range tls.CipherSuites() {
		secure = append(secure, s.Name)
	}
	for _, s := range tls.InsecureCipherSuites() {
		insecure = append(insecure, s.Name)
	}
	return secure, insecure
}

// transport checks one TLS section against itself and its listen URLs.
func (v *validator) transport(section, listenKey, side string, t *TransportSecurity, listen []string) {
	key := func(sub string) string { return section + "." + sub }
	if t.CertFile != "" && t.KeyFile == "" {
		v.failAt(key("cert-file"), key("key-file"), ErrConflict, "required with cert-file")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		v.failAt(key("key-file"), key("cert-file"), ErrConflict, "required with key-file")
	}
	if t.AutoTLS && t.CertFile != "" {
		v.failAt(key("auto-tls")+","+key("cert-file"), key("auto-tls"), ErrConflict, "conflicts with cert-file: use generated or given certificates, not both")
	}
	if t.ClientCertAuth && t.TrustedCAFile == "" && !t.AutoTLS {
		v.failAt(key("client-cert-auth"), key("trusted-ca-file"), ErrConflict, "required with client-cert-auth (the CA that signs %s certificates)", side)
	}
	for _, f := range []struct{ sub, path string }{{"cert-file", t.CertFile}, {"key-file", t.KeyFile}, {"trusted-ca-file", t.TrustedCAFile}} {
		if f.path != "" {
			if p := checkReadable(f.path); p != "" {
				v.fail(key(f.sub), ErrBadValue, "%s", p)
			}
		}
	}
	secureURL := false
	for _, raw := range listen {
		if strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "unixs://") {
			secureURL = true
			if !t.Enabled() {
				v.fail(listenKey, ErrConflict, "%q needs TLS: set %s cert-file and key-file, or auto-tls", raw, section)
			}
		}
	}
	if t.Enabled() && !secureURL && len(listen) > 0 {
		v.failAt(key("cert-file")+","+key("auto-tls"), section, ErrConflict,
			"TLS is configured but no %s URL is https://, so it would not be used: change the URLs to https://", listenKey)
	}
}

func (v *validator) log() {
	l := &v.c.Log
	if !slices.Contains([]string{"debug", "info", "warn", "error", "dpanic", "panic", "fatal"}, l.Level) {
		v.fail("log-level", ErrBadValue, "want debug, info, warn or error, got %q", l.Level)
	}
	if !slices.Contains([]string{"json", "text", "console"}, l.Format) {
		v.fail("log-format", ErrBadValue, "want json or text, got %q", l.Format)
	}
}
