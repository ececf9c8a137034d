package config_test

import (
	"testing"

	"github.com/parleyhq/parley/internal/config"
)

func TestValidatePprofAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"":               true, // off
		"127.0.0.1:6060": true,
		"[::1]:6060":     true,
		"localhost:0":    true,
		":6060":          false, // every interface
		"0.0.0.0:6060":   false,
		"10.1.2.3:6060":  false,
		"6060":           false,
	} {
		c := config.Default()
		c.PprofAddr = addr
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("pprof-addr %q: Validate() = %v", addr, err)
		}
	}
}
