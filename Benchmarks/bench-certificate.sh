# Sourced by dataconn-bench.sh and cost-model.sh, not run on its own.

# make_node_certificate DIR NAME: a throwaway CA and one node certificate signed by it, for both
# nodes of a TLS benchmark, written as DIR/cert.pem in the form of Perl's `cert` (key, certificate
# and CA in one PEM file). Needs openssl.
make_node_certificate() {
    local dir=$1 name=$2
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/ca.key" \
        -out "$dir/ca.pem" -days 2 -subj "/CN=$name-ca" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/node.key" \
        -out "$dir/node.csr" -subj "/CN=$name-node" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' > "$dir/node.ext"
    openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial 4711 -days 2 \
        -out "$dir/node.pem" -extfile "$dir/node.ext" 2>/dev/null
    cat "$dir/node.key" "$dir/node.pem" "$dir/ca.pem" > "$dir/cert.pem"
}
