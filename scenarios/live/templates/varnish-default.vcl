# Varnish Cache 7.1 (Debian 12) as shipped: Debian's /etc/varnish/default.vcl, a backend and
# empty subroutines, so the built-in VCL decides (https://varnish-cache.org/docs/7.1/users-guide/vcl-built-in-code.html):
# an Upgrade GET is looked up and fetched like any GET, its Upgrade and Connection fields
# dropped as hop-by-hop. varnish-pipe-websocket.vcl has the documented WebSocket lines.
# TLS: Varnish does not terminate it, so only ws is gated through it.
# The listen address is on the command line (see varnish-pipe-websocket.vcl).
# Placeholders (harness/src/real/product/template.rs): upstream_port.
vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "{{upstream_port}}";
}

sub vcl_recv {
}

sub vcl_backend_response {
}

sub vcl_deliver {
}
