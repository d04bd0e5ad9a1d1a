package main

// The client commands (kv, member, endpoint, lease) talk to a running cluster
// through go.etcd.io/etcd/client/v3. Their flags, output formats and exit
// codes are etcdctl's, so that a user or a script can switch between
// `etcdctl put k v` and `concord kv put k v` without relearning anything.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Exit codes: etcdctl's numbers (go.etcd.io/etcd/pkg/v3/cobrautl), so that
// scripts branching on etcdctl's exit status keep working. Cobra's own flag
// parsing errors exit with exitGeneral, as they do in etcdctl.
const (
	exitGeneral       = 1   // a server error or any other failure at run time
	exitBadConnection = 2   // the client could not be built or a stream failed
	exitInvalidInput  = 3   // malformed txn input
	exitBadFeature    = 4   // a valid flag with an unsupported value (-w, --order, --consistency)
	exitInterrupted   = 5   // a watch ended by the server
	exitBadArgs       = 128 // missing, extra or malformed arguments
)

// envPrefix names the environment variables that set global flags:
// CONCORD_ENDPOINTS for --endpoints, CONCORD_DIAL_TIMEOUT for --dial-timeout,
// as ETCDCTL_* do for etcdctl. A flag given on the command line wins.
const envPrefix = "CONCORD_"

// Defaults of the global flags, etcdctl's.
const (
	defaultEndpoint         = "127.0.0.1:2379"
	defaultDialTimeout      = 2 * time.Second
	defaultCommandTimeout   = 5 * time.Second
	defaultKeepAliveTime    = 2 * time.Second
	defaultKeepAliveTimeout = 6 * time.Second
)

// withCode gives err the process exit code code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// badArgs is an argument error: exit code 128, as etcdctl's ExitBadArgs.
func badArgs(format string, a ...any) error {
	return withCode(exitBadArgs, fmt.Errorf(format, a...))
}

// newClientCommands returns the top-level client commands. Each carries the
// global flags (--endpoints, -w, TLS, auth, ...) as persistent flags.
func newClientCommands() []*cobra.Command {
	return []*cobra.Command{
		newKVCommand(newGlobalOptions()),
		newMemberCommand(newGlobalOptions()),
		newEndpointCommand(newGlobalOptions()),
		newLeaseCommand(newGlobalOptions()),
		newLockCommand(newGlobalOptions()), newElectCommand(newGlobalOptions()),
	}
}

// globalOptions holds the flags every client command shares and builds the
// clients and printers from them. One value serves one command group; a
// command line runs one command, so nothing here is shared between runs.
type globalOptions struct {
	flags *pflag.FlagSet // the global flags alone, for the environment lookup

	endpoints          []string
	dialTimeout        time.Duration
	commandTimeout     time.Duration
	keepAliveTime      time.Duration
	keepAliveTimeout   time.Duration
	maxRequestBytes    int
	maxRecvBytes       int
	writeOut           string
	hex                bool
	insecureTransport  bool
	insecureSkipVerify bool
	cert, key, cacert  string
	user, password     string
	token              string
}

func newGlobalOptions() *globalOptions {
	o := &globalOptions{flags: pflag.NewFlagSet("global", pflag.ContinueOnError)}
	fs := o.flags
	fs.StringSliceVar(&o.endpoints, "endpoints", []string{defaultEndpoint}, "gRPC endpoints")
	fs.StringVarP(&o.writeOut, "write-out", "w", "simple", "set the output format (fields, json, simple, table)")
	fs.BoolVar(&o.hex, "hex", false, "print byte strings as hex encoded strings")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", defaultDialTimeout, "dial timeout for client connections")
	fs.DurationVar(&o.commandTimeout, "command-timeout", defaultCommandTimeout, "timeout for short running command (excluding dial timeout)")
	fs.DurationVar(&o.keepAliveTime, "keepalive-time", defaultKeepAliveTime, "keepalive time for client connections")
	fs.DurationVar(&o.keepAliveTimeout, "keepalive-timeout", defaultKeepAliveTimeout, "keepalive timeout for client connections")
	fs.IntVar(&o.maxRequestBytes, "max-request-bytes", 0, "client-side request send limit in bytes (if 0, it defaults to 2.0 MiB (2 * 1024 * 1024).)")
	fs.IntVar(&o.maxRecvBytes, "max-recv-bytes", 0, "client-side response receive limit in bytes (if 0, it defaults to \"math.MaxInt32\")")
	fs.BoolVar(&o.insecureTransport, "insecure-transport", true, "disable transport security for client connections")
	fs.BoolVar(&o.insecureSkipVerify, "insecure-skip-tls-verify", false, "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)")
	fs.StringVar(&o.cert, "cert", "", "identify secure client using this TLS certificate file")
	fs.StringVar(&o.key, "key", "", "identify secure client using this TLS key file")
	fs.StringVar(&o.cacert, "cacert", "", "verify certificates of TLS-enabled secure servers using this CA bundle")
	fs.StringVar(&o.user, "user", "", "username[:password] for authentication")
	fs.StringVar(&o.password, "password", "", "password for authentication (if this option is used, --user option shouldn't include password)")
	fs.StringVar(&o.token, "auth-jwt-token", "", "JWT token used for authentication (if this option is used, --user and --password should not be set)")
	return o
}

// attach makes the global flags persistent flags of group and loads the
// environment and checks the flags before any of its commands runs.
func (o *globalOptions) attach(group *cobra.Command) *cobra.Command {
	group.PersistentFlags().AddFlagSet(o.flags)
	group.PersistentPreRunE = func(*cobra.Command, []string) error { return o.prepare() }
	return group
}

// prepare applies CONCORD_* environment variables to the global flags not
// given on the command line, then checks the values that need checking.
func (o *globalOptions) prepare() error {
	var errs []error
	o.flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && v != "" {
			if err := o.flags.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for %s: %w", v, name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return withCode(exitBadArgs, err)
	}
	for i, ep := range o.endpoints {
		o.endpoints[i] = strings.TrimSpace(ep)
	}
	for _, name := range []string{"cert", "key", "cacert"} {
		if f := o.flags.Lookup(name); f.Changed && f.Value.String() == "" {
			return badArgs("empty string is passed to --%s option", name)
		}
	}
	if _, ok := outputFormats[o.writeOut]; !ok {
		return withCode(exitBadFeature, errors.New("unsupported output format"))
	}
	return nil
}

// config returns the clientv3 configuration for endpoints.
func (o *globalOptions) config(ctx context.Context, endpoints []string) (clientv3.Config, error) {
	spec := &clientv3.ConfigSpec{
		Endpoints:          endpoints,
		DialTimeout:        o.dialTimeout,
		KeepAliveTime:      o.keepAliveTime,
		KeepAliveTimeout:   o.keepAliveTimeout,
		MaxCallSendMsgSize: o.maxRequestBytes,
		MaxCallRecvMsgSize: o.maxRecvBytes,
		Secure: &clientv3.SecureConfig{
			Cert:               o.cert,
			Key:                o.key,
			Cacert:             o.cacert,
			InsecureTransport:  o.insecureTransport,
			InsecureSkipVerify: o.insecureSkipVerify,
		},
	}
	auth, err := o.auth()
	if err != nil {
		return clientv3.Config{}, err
	}
	spec.Auth = auth
	// clientv3 logs retries at warn level to stderr by default; the command
	// reports the one error that matters itself.
	lg := zap.NewNop()
	cfg, err := clientv3.NewClientConfig(spec, lg)
	if err != nil {
		return clientv3.Config{}, withCode(exitBadArgs, err)
	}
	cfg.Logger = lg
	cfg.Context = ctx
	return *cfg, nil
}

// auth returns the credentials from --user, --password and --auth-jwt-token.
func (o *globalOptions) auth() (*clientv3.AuthConfig, error) {
	switch {
	case o.user == "" && o.token == "":
		return nil, nil
	case o.token != "":
		if o.user != "" || o.password != "" {
			return nil, badArgs("--auth-jwt-token cannot be used with --user or --password")
		}
		return &clientv3.AuthConfig{Token: o.token}, nil
	case o.password != "":
		if strings.Contains(o.user, ":") {
			return nil, badArgs("--user must not contain a password when --password is given")
		}
		return &clientv3.AuthConfig{Username: o.user, Password: o.password}, nil
	}
	name, password, ok := strings.Cut(o.user, ":")
	if !ok {
		// etcdctl prompts on the terminal here; Concord has no terminal
		// library, and echoing a password is worse than asking for it.
		return nil, badArgs("no password for user %q: use --user %s:PASSWORD, --password or %sPASSWORD", name, name, envPrefix)
	}
	return &clientv3.AuthConfig{Username: name, Password: password}, nil
}

// client returns a client of the --endpoints; the caller closes it.
func (o *globalOptions) client(cmd *cobra.Command) (*clientv3.Client, error) {
	return o.clientOf(cmd, o.endpoints)
}

// clientOf returns a client of endpoints; the caller closes it.
func (o *globalOptions) clientOf(cmd *cobra.Command, endpoints []string) (*clientv3.Client, error) {
	cfg, err := o.config(cmd.Context(), endpoints)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, withCode(exitBadConnection, err)
	}
	return cli, nil
}

// request runs one request on a client of the --endpoints, bounded by
// --command-timeout.
func request[T any](o *globalOptions, cmd *cobra.Command, req func(context.Context, *clientv3.Client) (T, error)) (T, error) {
	cli, err := o.client(cmd)
	if err != nil {
		var zero T
		return zero, err
	}
	defer cli.Close()
	ctx, cancel := o.commandCtx(cmd)
	defer cancel()
	return req(ctx, cli)
}

// do sends op as one request (see request).
func (o *globalOptions) do(cmd *cobra.Command, op clientv3.Op) (clientv3.OpResponse, error) {
	return request(o, cmd, func(ctx context.Context, cli *clientv3.Client) (clientv3.OpResponse, error) {
		return cli.Do(ctx, op)
	})
}

// commandCtx bounds one short request by --command-timeout; an interrupt
// (the command's context) ends it too.
func (o *globalOptions) commandCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), o.commandTimeout)
}

// printerFor returns the printer of the -w format for a response of kind,
// or an exitBadFeature error if that format cannot print it. Commands call
// it before sending a request, so an unsupported format never follows a
// write that already happened.
func (o *globalOptions) printerFor(cmd *cobra.Command, kind response) (printer, error) {
	if !outputFormats[o.writeOut].supports(kind) {
		return nil, errOutputUnsupported(o.writeOut)
	}
	return newPrinter(o.writeOut, o.hex, cmd.OutOrStdout(), cmd.ErrOrStderr()), nil
}

// argOrStdin returns args[i], or all of stdin if there is no such argument.
func argOrStdin(args []string, stdin io.Reader, i int) (string, error) {
	if i < len(args) {
		return args[i], nil
	}
	b, err := io.ReadAll(stdin)
	if err != nil || len(b) == 0 {
		return "", errors.New("no available argument and stdin")
	}
	return string(b), nil
}

// parseLeaseID parses a lease ID written in hex, as etcdctl prints them.
func parseLeaseID(s string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(s, 16, 64)
	if err != nil {
		return 0, err
	}
	return clientv3.LeaseID(id), nil
}

// parseMemberID parses a member ID written in hex, as member list prints them.
func parseMemberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, badArgs("bad member ID arg (%w), expecting ID in Hex", err)
	}
	return id, nil
}
