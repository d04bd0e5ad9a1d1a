package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/concordkv/concord/agent"
)

func newAgentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a Concord member (etcd's flags; --dev for a throw-away single node)",
		Long: `Run a Concord member. The flags, the YAML keys of --config-file and the
CONCORD_* environment variables are etcd's: --name, --data-dir,
--listen-client-urls, --initial-cluster, ... Flags override environment
variables, which override the file. --dev starts one node with its data in a
temporary directory, serving clients on 127.0.0.1:2379.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.FromFlags(cmd.Flags(), os.Environ())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return agent.Run(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	scratch := agent.DefaultConfig()
	agent.BindFlags(cmd.Flags(), &scratch)
	return cmd
}
