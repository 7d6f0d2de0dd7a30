import AEMPCodecs

extension ProfileSettings {
    /// The fixed port of the embedded default profile: 4040, as in the AnyEvent::MP examples.
    ///
    /// The port is fixed (never an ephemeral fallback) because the default profile also uses the
    /// node as its own seed: a second terminal finds the node at `127.0.0.1:4040` through the same
    /// default. If the port is taken, starting fails with the listener's error.
    public static let defaultPort = 4040

    /// The loopback address of the embedded default profile, `127.0.0.1:4040`.
    public static var defaultAddress: String { "127.0.0.1:\(defaultPort)" }

    /// The embedded default profile of `aemp run` without arguments: an anonymous node ID
    /// (`anon/` + random suffix), listening on ``defaultAddress`` and using itself as seed.
    ///
    /// These are `configure` arguments without `force`, so anything set in the rc file (global
    /// settings or the host-name profile) overrides them. The secret comes from the rc file;
    /// `aemp run` generates one with ``randomSecret()`` and saves it there when none is configured.
    public static var runDefaults: ProfileSettings {
        ProfileSettings([
            ("nodeid", .text("anon/")),
            ("binds", .array([.text(defaultAddress)])),
            ("seeds", .array([.text(defaultAddress)])),
        ])
    }

    /// The defaults of the client commands (`snd`, `cal`, `mon`, `eval`, `nodes`): the seed
    /// ``defaultAddress``, overridden by the rc file. Client commands always run as a fresh
    /// anonymous node listening on an ephemeral loopback port (``clientNodeID`` and
    /// ``clientBinds``) unless `AEMP_CONFIG` sets `nodeid` or `binds`.
    public static var clientDefaults: ProfileSettings {
        ProfileSettings([("seeds", .array([.text(defaultAddress)]))])
    }

    /// The node ID template of a client command: `anon/` (a fresh anonymous ID each time).
    public static let clientNodeID: Value = .text("anon/")

    /// The listeners of a client command: an ephemeral port on the loopback address.
    public static var clientBinds: Value { .array([.text("127.0.0.1:0")]) }

    /// The profile name client commands look up, `aemp`, as Perl's bin/aemp does.
    public static let clientProfileName = "aemp"

    /// A new random shared secret: 86 characters from `[0-9A-Za-z]` (about 512 bits), drawn from
    /// the system's secure random generator.
    ///
    /// Perl: `aemp gensecret` (64 random bytes written in base 62).
    ///
    /// - Returns: the secret.
    public static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return randomSecret(using: &generator)
    }

    /// A new random shared secret from `generator` (for tests).
    ///
    /// - Parameter generator: the random source.
    /// - Returns: 86 characters from `[0-9A-Za-z]`.
    public static func randomSecret<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".unicodeScalars)
        var scalars = String.UnicodeScalarView()
        for _ in 0..<86 {
            scalars.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)])
        }
        return String(scalars)
    }
}
