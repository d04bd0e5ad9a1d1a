package agent

import (
	"net"
	"net/url"
	"os"
	"strings"
)

// resolve fills the values that the user left to be derived from others,
// after every layer has been applied: dev mode's settings, advertise URLs
// from listen URLs, data-dir from name, initial-cluster from name and peer
// URLs, and etcd's "0 means the default" quota. makeTemp lets dev mode create
// its temporary data directory; it is false when errors are already known,
// so that a configuration that will be refused leaves nothing behind.
func (c *Config) resolve(makeTemp bool) []*KeyError {
	var errs []*KeyError
	if c.Dev {
		if !c.isSet("listen-client-urls") {
			c.Network.ListenClientURLs = []string{DevClientURL}
			if !c.isSet("advertise-client-urls") {
				c.Network.AdvertiseClientURLs = []string{DevClientURL}
			}
		}
		if !c.isSet("listen-peer-urls") {
			c.Network.ListenPeerURLs = []string{DevPeerURL}
			if !c.isSet("initial-advertise-peer-urls") {
				c.Network.InitialAdvertisePeerURLs = []string{DevPeerURL}
			}
		}
		if (!c.isSet("data-dir") || c.DataDir == "") && makeTemp && !c.tempDataDir {
			dir, err := os.MkdirTemp("", "concord-dev-")
			if err != nil {
				src := c.origins["dev"]
				errs = append(errs, &KeyError{Where: src.where, Key: "dev", Kind: ErrBadValue, src: src,
					Msg: "dev: create a temporary data directory: " + err.Error()})
			} else {
				c.DataDir, c.tempDataDir = dir, true
			}
		}
	}

	// etcd refuses listen-client-urls without advertise-client-urls; when
	// the listen URLs name an address, advertising them is what the user
	// means. When they listen on every interface there is nothing to
	// advertise: leave the list empty for Validate to ask for it.
	if c.isSet("listen-client-urls") && (!c.isSet("advertise-client-urls") || len(c.Network.AdvertiseClientURLs) == 0) {
		if urls, ok := advertiseFromListen(c.Network.ListenClientURLs); ok {
			c.Network.AdvertiseClientURLs = urls
		}
	}
	if c.isSet("listen-peer-urls") && (!c.isSet("initial-advertise-peer-urls") || len(c.Network.InitialAdvertisePeerURLs) == 0) {
		if urls, ok := advertiseFromListen(c.Network.ListenPeerURLs); ok {
			c.Network.InitialAdvertisePeerURLs = urls
		}
	}

	if !c.tempDataDir && (!c.isSet("data-dir") || c.DataDir == "") {
		c.DataDir = c.Name + ".etcd"
	}
	if !c.isSet("initial-cluster") || strings.TrimSpace(c.Cluster.InitialCluster) == "" {
		entries := make([]string, len(c.Network.InitialAdvertisePeerURLs))
		for i, u := range c.Network.InitialAdvertisePeerURLs {
			entries[i] = c.Name + "=" + u
		}
		c.Cluster.InitialCluster = strings.Join(entries, ",")
	}
	if c.Store.QuotaBackendBytes == 0 {
		c.Store.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	return errs
}

// advertiseFromListen returns the URLs to advertise for listen URLs: the
// listen URLs themselves when each names an address; nil (with ok) when one
// listens on every interface, which has no address to advertise; not ok
// when one does not parse (Validate reports that on the listen key).
func advertiseFromListen(listen []string) (urls []string, ok bool) {
	seen := map[string]bool{}
	for _, raw := range listen {
		if checkURL(raw, roleListen) != "" || seen[raw] {
			return nil, false // Validate reports it on the listen key
		}
		seen[raw] = true
		u, _ := url.Parse(raw)
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
			return nil, true
		}
	}
	return append([]string(nil), listen...), true
}
