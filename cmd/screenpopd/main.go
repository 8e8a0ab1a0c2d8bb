// Command screenpopd is the screenpop daemon: it watches the PBX, builds a
// customer card for every inbound call and pushes it to the browser of the
// agent whose phone rings.
//
//	screenpopd [run] [-config FILE]              start the daemon (no -config: the embedded demo)
//	screenpopd config check [-config FILE] [-connect]  every configuration error, with its line; -connect also asks every source once, and reaches the history's PostgreSQL and Redis
//	screenpopd source test NAME -phone NUMBER    ask one source, print its fields and the time taken
//	screenpopd pbx check [-source NAME]          check each ARI PBX: what IT must fix, line by line
//	screenpopd sample [telephony|source] KIND    print a kind's commented sample configuration
//	screenpopd token -agent ID [-name NAME]      issue an agent sign-in token (needs auth.secret_env)
//	screenpopd db migrate [-status]              apply the history's PostgreSQL migrations
//	screenpopd access-log -customer ID [-since D] who saw a customer's (or number's, agent's) cards
//	screenpopd erase -customer ID -by WHO -yes   erase a person's history, evict their cached answers
//
// This package only parses flags, loads configuration and wires packages
// together; see app.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		if !errors.Is(err, errReported) && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "screenpopd:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errReported means the command has already printed what went wrong.
var errReported = errors.New("reported")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) error {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runDaemon(ctx, args, stdout, stderr, env)
	case "config":
		if len(args) == 0 || args[0] != "check" {
			return errors.New(configCheckUsage)
		}
		return configCheck(ctx, args[1:], stdout, stderr, env)
	case "source":
		if len(args) == 0 || args[0] != "test" {
			return fmt.Errorf("usage: screenpopd source test NAME -phone NUMBER [-config FILE]")
		}
		return sourceTest(ctx, args[1:], stdout, stderr, env)
	case "pbx":
		if len(args) == 0 || args[0] != "check" {
			return &exitCodeError{code: 2, err: fmt.Errorf("usage: %s", pbxCheckUsage)}
		}
		return pbxCheck(ctx, args[1:], stdout, stderr, env)
	case "sample":
		return printSample(args, stdout)
	case "token":
		return issueToken(args, stdout, stderr, env)
	case "db":
		if len(args) == 0 || args[0] != "migrate" {
			return fmt.Errorf("usage: screenpopd db migrate [-config FILE] [-status]")
		}
		return historyTool(ctx, args[1:], stdout, stderr, env, withDSN(dbMigrate))
	case "access-log":
		return historyTool(ctx, args, stdout, stderr, env, withDSN(accessLogCmd))
	case "erase":
		return historyTool(ctx, args, stdout, stderr, env, eraseAndEvict)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	if looksLikeConfigFile(cmd) {
		// `screenpopd FILE`, as the usage has it: run is the command that
		// may be left out.
		return runDaemon(ctx, append([]string{cmd}, args...), stdout, stderr, env)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// looksLikeConfigFile tells a configuration file named without "run"
// from a mistyped command: a file that is there, or a name ending in
// .yaml or .yml (one that is not there is then reported as such by run,
// not as an unknown command).
func looksLikeConfigFile(arg string) bool {
	switch strings.ToLower(filepath.Ext(arg)) {
	case ".yaml", ".yml":
		return true
	}
	st, err := os.Stat(arg)
	return err == nil && st.Mode().IsRegular()
}

const (
	runUsage         = "usage: screenpopd [run] [-config FILE | FILE] [-listen ADDR]"
	configCheckUsage = "usage: screenpopd config check [-config FILE | FILE] [-connect [-phone N] [-customer ID] [-timeout D]]"
)

const usage = `usage:
  screenpopd [run] [-config FILE | FILE]       start the daemon (no file: the embedded demo)
  screenpopd config check [-config FILE | FILE] [-connect]  every configuration error, with its line; -connect also asks every source once, and reaches the history's PostgreSQL and Redis
  screenpopd source test NAME -phone NUMBER    ask one source, print its fields and the time taken
  screenpopd pbx check [-source NAME]          check each ARI PBX: what IT must fix, line by line
  screenpopd sample [telephony|source] KIND    print a kind's commented sample configuration (sample history: the history block)
  screenpopd token -agent ID [-name NAME]      issue an agent sign-in token (needs auth.secret_env)
  screenpopd db migrate [-config FILE] [-status]  apply the history's PostgreSQL migrations (the daemon does at start too)
  screenpopd access-log (-customer ID | -agent ID | -phone E164) [-since 720h] [-each] [-json]  who saw whose card
  screenpopd erase (-customer ID | -phone E164) -by WHO -yes  erase a person's history and notes, evict their cached answers
`

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) error {
	fs := flag.NewFlagSet("screenpopd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default: the embedded demo configuration)")
	listen := fs.String("listen", "", "override the configuration's listen address")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := configFileArg(rest, configPath, runUsage); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	m, err := NewMain(cfg, Options{Env: env, Stdout: stdout, Stderr: stderr})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	defer m.Close()

	// SIGHUP reloads the configuration: validated first, swapped only when
	// it is good, agents stay connected either way.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if *configPath == "" {
					m.logger.Warn("SIGHUP ignored: running on the embedded demo configuration, there is no file to re-read")
					continue
				}
				next, err := loadConfig(*configPath)
				if err == nil {
					if *listen != "" {
						next.Listen = *listen
					}
					err = m.Reload(next)
				}
				if err != nil {
					m.logger.Error("configuration refused, the running one stays", "file", *configPath, "err", err)
				}
			}
		}
	}()
	return m.Run(ctx)
}
