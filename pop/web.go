package pop

import (
	"embed"
	"io/fs"
	"net/http"
)

// The agent page is plain HTML, CSS and JavaScript with no build step and
// nothing from a CDN: call centers often run on networks without internet.
//
//go:embed web/*.html web/*.js web/*.css
var webFiles embed.FS

// Handler serves the agent page at "/" (with app.js and style.css), its
// WebSocket at "/ws", and at "/session" who the page is signed in as.
func (h *Hub) Handler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", h.serveWS)
	mux.HandleFunc("GET /session", h.serveSession)
	mux.Handle("GET /", pageHeaders(files, h.cfg.SignOutOrigins))
	return mux
}

// pageHeaders locks the page down: its own scripts and styles only, its
// socket on its own host, never framed, and no referrer leaving it. Its
// one form, signing out, posts to the daemon, which sends the browser on
// to the identity provider (signOut: its origins).
func pageHeaders(next http.Handler, signOut []string) http.Handler {
	formAction := "'self'"
	for _, o := range signOut {
		if n, err := normalizeOrigin(o); err == nil {
			formAction += " " + n
		}
	}
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		// 'self' covers ws:// and wss:// to the page's own host (CSP 3).
		"connect-src 'self'; base-uri 'none'; form-action " + formAction + "; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		// The page is small and changes with the daemon; a stale app.js
		// talking to a newer server is worse than a refetch.
		hd.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
