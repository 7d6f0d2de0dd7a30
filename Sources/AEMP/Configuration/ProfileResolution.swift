import AEMPCodecs

/// The outcome of `configure`-style profile resolution: which profile was used, the effective
/// settings, and the node configuration built from them.
///
/// Perl: the `$CONFIG` hash `configure` computes with `find_profile`, and the node ID it derives.
public struct ResolvedProfile: Sendable, Hashable {
    /// The profile name used for the lookup (`profile` argument, else the host name).
    public var profileName: String
    /// The effective settings (``ConfigFile/findProfile(_:arguments:)``), with `nodeid` filled in.
    public var settings: ProfileSettings
    /// The node configuration to start a node from.
    public var configuration: NodeConfiguration

    /// Creates a resolved profile.
    ///
    /// - Parameters:
    ///   - profileName: the profile name.
    ///   - settings: the effective settings.
    ///   - configuration: the node configuration.
    public init(profileName: String, settings: ProfileSettings, configuration: NodeConfiguration) {
        self.profileName = profileName
        self.settings = settings
        self.configuration = configuration
    }
}

extension ProfileSettings {
    /// Reads a Perl `configure` argument list: `key, value, key, value, ...`; an odd number of
    /// arguments means the first one is the profile name (Perl: `configure $profile, %kv`).
    ///
    /// - Parameter configureArguments: the arguments, as `aemp run` receives them after its JSON rule.
    /// - Throws: ``ConfigFileError/Code/invalidArguments`` if a key is not a string.
    public init(configureArguments: [Value]) throws(ConfigFileError) {
        var arguments = configureArguments[...]
        self.init()
        if arguments.count % 2 == 1 {
            self["profile"] = arguments.removeFirst()
        }
        while let key = arguments.popFirst(), let value = arguments.popFirst() {
            guard let name = key.stringValue, !name.isEmpty else {
                throw ConfigFileError(.invalidArguments, reason: "configure key must be a non-empty string, got \(key)")
            }
            self[name] = value
        }
    }

    /// The keys `configure` understands: ``NodeConfiguration/perlKeys`` plus the lookup keys
    /// (`profile`, `parent`, `norc`, `force`) and Perl's `eval`.
    public static var knownConfigureKeys: Set<String> {
        NodeConfiguration.perlKeys.union(ConfigFile.lookupKeys).union(["eval", "version"])
    }

    /// The keys that `configure` would ignore (probably typos), in order.
    public var unknownConfigureKeys: [String] {
        let known = Self.knownConfigureKeys
        return keys.filter { !known.contains($0) }
    }
}

extension ConfigFile {
    /// Resolves `configure` arguments against this rc file the way Perl's `configure` does: the
    /// profile name is the `profile` argument or else the host name; the settings come from
    /// ``findProfile(_:arguments:)``; the node ID template is `nodeid`, or else `"<profile>/"`
    /// (a node named after the profile with a random suffix).
    ///
    /// Perl: `AnyEvent::MP::Kernel::configure`, up to the point where it starts listening.
    ///
    /// - Parameters:
    ///   - arguments: the `configure` arguments (see ``ProfileSettings/init(configureArguments:)``).
    ///   - hostname: the default profile name and the value of `%n` (``NodeID/hostName()``).
    /// - Returns: the resolved profile.
    /// - Throws: ``ConfigFileError`` with code ``ConfigFileError/Code/invalidArguments`` for a value
    ///   of the wrong shape or a node ID template that expands to an invalid node ID, or
    ///   ``ConfigFileError/Code/parentCycle``.
    public func resolve(configureArguments arguments: ProfileSettings, hostname: String = NodeID.hostName()) throws(ConfigFileError)
        -> ResolvedProfile
    {
        var arguments = arguments
        var profileName = hostname
        if let profile = arguments.removeValue(forKey: "profile"), !profile.isNull {
            guard let name = profile.stringValue else {
                throw ConfigFileError(.invalidArguments, reason: "profile: expected a profile name, got \(profile)")
            }
            profileName = name
        }
        var settings = try findProfile(profileName, arguments: arguments)
        let template = settings.string("nodeid") ?? profileName + "/"
        settings["nodeid"] = .text(template)
        do {
            _ = try NodeID.expand(template: template, profile: profileName, hostname: hostname, runiq: "0000000000")
        } catch {
            throw ConfigFileError(.invalidArguments, reason: "nodeid: \(error.reason) (template \"\(template)\")")
        }
        let configuration: NodeConfiguration
        do {
            configuration = try NodeConfiguration(perlArguments: settings.pairs)
        } catch {
            throw ConfigFileError(.invalidArguments, reason: error.description)
        }
        return ResolvedProfile(profileName: profileName, settings: settings, configuration: configuration)
    }
}
