/// Turns a host and a service into the ordered list of targets to try.
///
/// Interim version: numeric hosts, `unix/` and numeric ports only.
func resolveConnectTargets(host: String, service: String) async throws(SocketError) -> [ConnectTarget] {
    if host == "unix/" { return [.unix(path: service)] }
    guard let port = Int(service), (0...65535).contains(port) else {
        throw SocketError(.noSuchAddress, "cannot resolve service '\(service)'")
    }
    guard let address = parseIP(host) else {
        throw SocketError(.noSuchAddress, "cannot resolve host '\(host)'")
    }
    return [.ip(address, port: port)]
}
