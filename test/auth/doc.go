// Package auth proves every way promgate's Prometheus client (pkg/prom)
// authenticates against real servers that check it, including the
// rotation of credentials on disk while the client keeps running:
//
//   - TLS: Prometheus' own --web.config.file with a server certificate of a
//     test CA; the right CA passes, another CA or none fails.
//   - Mutual TLS: client_auth_type RequireAndVerifyClientCert; no
//     certificate or one of another CA fails; a client certificate rotated
//     on disk is presented on the next connection, which the server proves
//     by trusting only the new certificate's issuer afterwards.
//   - Basic auth: Prometheus' basic_auth_users (bcrypt), through the
//     Authorization header, URL user info and a kubeconfig; wrong password
//     fails with 401; a password change takes effect.
//   - Bearer token file: vmauth in front of Prometheus; the token file is
//     rotated during a continuous query loop with both tokens accepted for
//     a while, then the old one revoked, and no request fails.
//   - Tenant header: vmauth routes only requests carrying the tenant's
//     header value; the value never appears in klog output at -v=10.
//   - In-cluster service account: the test binary re-executes itself in a
//     private mount namespace with a temporary directory bind-mounted over
//     /var/run/secrets/kubernetes.io/serviceaccount; vmauth serves TLS with
//     a certificate of that ca.crt and accepts that token, which is rotated.
//   - A backend of the configuration file (Prometheus' HTTP client
//     configuration: credentials_file, tls_config, http_headers) against
//     vmauth checking token and tenant, its token file rotated.
//   - Credentials over plain http:// are refused unless allowed.
//
// The tests are behind the build tag "e2e" and need Prometheus and vmauth
// in .cache/bin (make tools):
//
//	make e2e-auth   # go test -tags e2e -count=1 -v ./test/auth/...
//
// They listen on 127.0.0.1, ports 29500-29699.
package auth
