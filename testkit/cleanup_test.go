package testkit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// helperEnv selects what TestHelperProcess does in a child process of
// the test binary; the tests below run it to watch how fixtures end.
const helperEnv = "FLEETKIT_TESTKIT_HELPER"

var helperFleet = fleet.Config{Size: 50, Seed: 2}

// TestHelperProcess is not a test: it is the body of the child processes
// the clean-up tests start.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("run by the clean-up tests in a child process")
	}
	switch mode {
	case "pass":
		testkit.Fakes(t, helperFleet)
		testkit.Fakes(t, helperFleet)
	case "fail":
		testkit.Fakes(t, helperFleet)
		t.Fatal("planted failure")
	case "panic":
		testkit.Fakes(t, helperFleet)
		panic("planted panic")
	case "hang":
		fs := testkit.Fakes(t, helperFleet)
		fmt.Printf("HELPER-CONTAINER %s\n", fs.Container.ID)
		time.Sleep(5 * time.Minute)
	case "notready":
		fs := testkit.Fakes(t, helperFleet)
		testkit.Run(t, testkit.ContainerSpec{
			Kind: "notready", Image: fs.Container.Image, Cmd: []string{"-size", "10", "-listen", "0.0.0.0:8080"},
			Ports: []string{"8080"}, StartTimeout: 2 * time.Second,
			Ready: func(context.Context, *testkit.Container) error { return errors.New("planted: never ready") },
		})
	case "reap":
		testkit.Docker(t)
	case "docker":
		testkit.Refd(t)
	case "badoption":
		testkit.Fakes(t, helperFleet, testkit.RefdDemo(10))
	default:
		t.Fatalf("unknown %s %q", helperEnv, mode)
	}
}

// helper runs TestHelperProcess in mode with env added and returns its
// command, started; out collects its output.
func helper(t *testing.T, mode string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewScanner(stdout)
}

// finish reads the helper's output to the end and waits for it.
func finish(t *testing.T, cmd *exec.Cmd, sc *bufio.Scanner) (string, error) {
	t.Helper()
	var b strings.Builder
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String(), cmd.Wait()
}

// leftovers lists the containers and networks labelled with pid.
func leftovers(t *testing.T, pid int) []string {
	t.Helper()
	cl := testkit.Docker(t).Client()
	filter := map[string][]string{"label": {testkit.LabelPID + "=" + strconv.Itoa(pid)}}
	cs, err := cl.ListContainers(dc.ListContainersOptions{All: true, Filters: filter})
	require.NoError(t, err)
	var out []string
	for _, c := range cs {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	nets, err := cl.FilteredListNetworks(dc.NetworkFilterOpts{"label": {testkit.LabelPID + "=" + strconv.Itoa(pid): true}})
	require.NoError(t, err)
	for _, n := range nets {
		out = append(out, "network "+n.Name)
	}
	return out
}

// TestNoLeaks runs fixtures in tests that pass, fail, panic or time out
// waiting for readiness, and checks that their containers and networks
// are gone when the test process ends.
func TestNoLeaks(t *testing.T) {
	t.Parallel()
	testkit.Docker(t)
	cases := []struct {
		mode string
		want []string // in the output
		ok   bool
	}{
		{"pass", []string{"--- PASS: TestHelperProcess"}, true},
		{"fail", []string{"planted failure", "--- FAIL: TestHelperProcess"}, false},
		{"panic", []string{"planted panic"}, false},
		{"notready", []string{"planted: never ready", "not ready after 2s", "last 60 lines of its logs", `"msg":"listening"`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			cmd, sc := helper(t, tc.mode)
			out, err := finish(t, cmd, sc)
			if tc.ok {
				require.NoError(t, err, out)
			} else {
				require.Error(t, err, "the helper test must fail:\n%s", out)
			}
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			require.Empty(t, leftovers(t, cmd.Process.Pid), "output:\n%s", out)
		})
	}
}

// TestReapAfterKill kills a test process that holds a container (as a
// CI timeout would) and checks that the next test process's pool reaps
// what it left.
func TestReapAfterKill(t *testing.T) {
	t.Parallel()
	cl := testkit.Docker(t).Client()
	cmd, sc := helper(t, "hang")
	id := ""
	for id == "" && sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "HELPER-CONTAINER "); ok {
			id = rest
		}
	}
	require.NotEmpty(t, id, "the helper did not start its container")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = finish(t, cmd, sc)
	_, err := cl.InspectContainer(id)
	require.NoError(t, err, "a killed process cannot clean up: its container is still there")
	require.NotEmpty(t, leftovers(t, cmd.Process.Pid))

	reaper, sc2 := helper(t, "reap")
	out, err := finish(t, reaper, sc2)
	require.NoError(t, err, out)
	_, err = cl.InspectContainer(id)
	var nsc *dc.NoSuchContainer
	require.ErrorAs(t, err, &nsc, "the next pool start reaps it")
	require.Empty(t, leftovers(t, cmd.Process.Pid))
}

// TestNoDockerSkipsOrFails points the fixtures at an engine that is not
// there: they skip with a one-line reason, or fail when
// FLEETKIT_REQUIRE_DOCKER=1.
func TestNoDockerSkipsOrFails(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	nowhere := "DOCKER_HOST=unix:///nonexistent/fleetkit-testkit/docker.sock"
	cmd, sc := helper(t, "docker", nowhere, testkit.RequireDockerEnv+"=")
	out, err := finish(t, cmd, sc)
	require.NoError(t, err, out)
	require.Contains(t, out, "--- SKIP: TestHelperProcess")
	require.Regexp(t, `(?m)^\s+\S+\.go:\d+: testkit: no Docker engine: [^\n]+\n--- SKIP`, out)

	cmd, sc = helper(t, "docker", nowhere, testkit.RequireDockerEnv+"=1")
	out, err = finish(t, cmd, sc)
	require.Error(t, err, out)
	require.Contains(t, out, "--- FAIL: TestHelperProcess")
	require.Contains(t, out, testkit.RequireDockerEnv+"=1")
}

func TestOptionOfAnotherFixtureFails(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd, sc := helper(t, "badoption")
	out, err := finish(t, cmd, sc)
	require.Error(t, err, out)
	require.Contains(t, out, "testkit: Fakes: option RefdDemo applies to Refd only")
}
