//go:build tools

// The agentsh commands this service runs, pinned by this module's go.mod and go.sum so that
// Go verifies every byte a module proxy or mirror serves (scripts/install-agentsh builds them).
package tools

import (
	_ "github.com/agentsh/agentsh/cmd/agentsh"
	_ "github.com/agentsh/agentsh/cmd/agentsh-stub"
	_ "github.com/agentsh/agentsh/cmd/agentsh-unixwrap"
)
