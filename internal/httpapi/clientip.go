package httpapi

import (
	"net/http"
	"net/netip"
)

// ClientIP returns the address of the client that made r: the TCP peer, unless it is one of the
// trusted proxies, whose X-Forwarded-For is then believed (as for the inbound API's allowlists).
func ClientIP(r *http.Request, trustedProxies []netip.Prefix) netip.Addr {
	return (&authenticator{trustedProxies: trustedProxies}).clientIP(r)
}
