# Varnish Cache 7.1 (Debian 12) passing WebSockets through, as Varnish's documentation shows.
# Source: "Using Websockets" in the Varnish 7.1 user's guide
# (https://varnish-cache.org/docs/7.1/users-guide/vcl-example-websockets.html): in
# `vcl_recv`, a request with `Upgrade: websocket` returns `pipe`, and `vcl_pipe` copies the
# client's Upgrade and Connection fields to the backend request (Varnish drops hop-by-hop
# fields otherwise). A piped connection is relayed byte for byte until either side closes;
# the `pipe_timeout` parameter (60 s by default) is its idle limit, left at its default.
# The shipped default (varnish-default.vcl) has no such lines: the built-in `vcl_recv` looks
# the request up like any GET.
# TLS: Varnish does not terminate it (https://varnish-cache.org/docs/7.1/phk/ssl.html), so
# only ws is gated through it.
# The listen address is on the command line: `varnishd -F -n DIR -a 127.0.0.1:LISTEN
# -f default.vcl -s malloc,64m`, with `-j none` when started as root (no jail: the worker
# keeps root and can use dir).
# Placeholders (harness/src/real/product/template.rs): upstream_port.
vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "{{upstream_port}}";
}

sub vcl_recv {
    if (req.http.upgrade ~ "(?i)websocket") {
        return (pipe);
    }
}

sub vcl_pipe {
    if (req.http.upgrade) {
        set bereq.http.upgrade = req.http.upgrade;
        set bereq.http.connection = req.http.connection;
    }
}
