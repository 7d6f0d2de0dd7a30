import AEMPCodecs

/// The contents of the rc file: global settings plus named profiles.
///
/// Perl: `AnyEvent::MP::Config` (`%CFG`). The layout is Perl's, so a Perl rc file
/// (`~/.perl-anyevent-mp`) can be read and edited by pointing `AEMP_RC` at it:
///
/// ```json
/// {
///    "version" : 1,
///    "secret" : "global secret, inherited by every profile",
///    "seeds" : ["127.0.0.1:4040"],
///    "profile" : {
///       "server" : { "binds" : ["*:4040"] },
///       "doomed" : { "parent" : "server", "nodeid" : "doomed" }
///    }
/// }
/// ```
///
/// Every top-level key except `profile` is a global setting; `profile` maps profile names to their
/// own settings, and a profile's `parent` names the profile it inherits from. ``findProfile(_:arguments:)``
/// merges them the way `configure` does. See ``ConfigFile/load(path:)`` and ``ConfigFile/save(to:)``
/// for the file itself and ``ConfigFile/defaultPath(environment:)`` for where it lives.
public struct ConfigFile: Sendable, Hashable {
    /// One named profile.
    public struct NamedProfile: Sendable, Hashable {
        /// The profile name.
        public var name: String
        /// Its own settings (without inherited values).
        public var settings: ProfileSettings

        /// Creates a named profile.
        ///
        /// - Parameters:
        ///   - name: the profile name.
        ///   - settings: its settings.
        public init(name: String, settings: ProfileSettings) {
            self.name = name
            self.settings = settings
        }
    }

    /// The global settings: every top-level key except `profile` (Perl keeps `version => 1` here too).
    public var global: ProfileSettings
    /// The named profiles in file order.
    public private(set) var profiles: [NamedProfile]

    /// A fresh configuration, as Perl starts when there is no file: `{"version": 1}`.
    public init() {
        global = ProfileSettings([("version", .int(1))])
        profiles = []
    }

    /// Creates a configuration from its parts.
    ///
    /// - Parameters:
    ///   - global: the global settings (a `profile` key in them is ignored).
    ///   - profiles: the named profiles; a later one replaces an earlier one of the same name.
    public init(global: ProfileSettings, profiles: [NamedProfile] = []) {
        var global = global
        global.removeValue(forKey: "profile")
        self.global = global
        self.profiles = []
        for profile in profiles { setProfile(profile.name, profile.settings) }
    }

    /// The names of all profiles, in file order.
    public var profileNames: [String] { profiles.map(\.name) }

    /// The own settings of profile `name` (Perl: `$CFG{profile}{$name}`), or `nil` if there is none.
    ///
    /// - Parameter name: the profile name.
    /// - Returns: the profile's settings.
    public func profile(_ name: String) -> ProfileSettings? {
        profiles.first { $0.name == name }?.settings
    }

    /// Replaces or removes a profile (Perl: `aemp delprofile` when `settings` is `nil`).
    ///
    /// - Parameters:
    ///   - name: the profile name.
    ///   - settings: the new settings, or `nil` to remove the profile.
    public mutating func setProfile(_ name: String, _ settings: ProfileSettings?) {
        if let index = profiles.firstIndex(where: { $0.name == name }) {
            if let settings { profiles[index].settings = settings } else { profiles.remove(at: index) }
        } else if let settings {
            profiles.append(NamedProfile(name: name, settings: settings))
        }
    }

    /// Edits the global settings (`profile` = `nil`) or a profile, creating the profile if needed
    /// (Perl: `$cfg->{profile}{$name} ||= {}` in `aemp profile <name> ...`).
    ///
    /// - Parameters:
    ///   - profile: the profile name, or `nil` for the global settings.
    ///   - body: the edit.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    @discardableResult
    public mutating func edit<Result, Failure: Error>(
        profile: String?, _ body: (inout ProfileSettings) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        guard let profile else { return try body(&global) }
        var settings = self.profile(profile) ?? ProfileSettings()
        let result = try body(&settings)
        setProfile(profile, settings)
        return result
    }

    // MARK: Profile lookup

    /// The keys that steer the lookup itself and never reach a node: `profile`, `parent`, `norc`, `force`.
    public static let lookupKeys: Set<String> = ["profile", "parent", "norc", "force"]

    /// Perl's built-in defaults, the bottom layer of every lookup: `monitor_timeout` 30,
    /// `connect_interval` 2 and the framing and auth lists of ``NodeConfiguration/default``.
    ///
    /// Perl also lists `storable` in `framing_format`; only Perl speaks it, so it is left out here.
    public static var perlDefaults: ProfileSettings {
        let defaults = NodeConfiguration.default
        return ProfileSettings([
            ("monitor_timeout", .int(30)),
            ("connect_interval", .int(2)),
            ("framing_format", .array(defaults.framingFormats.map { .text($0.rawValue) })),
            ("auth_offer", .array(defaults.authOffer.map { .text($0.rawValue) })),
            ("auth_accept", .array(defaults.authAccept.map { .text($0.rawValue) })),
        ])
    }

    /// The settings of profile `name` with everything it inherits: the global settings, then its
    /// ancestors along `parent` (farthest first), then the profile itself. A name without a profile
    /// yields the global settings, as in Perl.
    ///
    /// Perl: `AnyEvent::MP::Config::_find_profile`.
    ///
    /// - Parameter name: the profile name, or `nil` for the global settings alone.
    /// - Returns: the inherited settings, without `parent`.
    /// - Throws: ``ConfigFileError/Code/parentCycle`` if the `parent` chain loops.
    public func inheritedSettings(of name: String?) throws(ConfigFileError) -> ProfileSettings {
        var chain: [ProfileSettings] = []
        var visited: [String] = []
        var next = name
        while let current = next {
            if visited.contains(current) {
                let loop = (visited + [current]).map { "\"\($0)\"" }.joined(separator: " → ")
                throw ConfigFileError(.parentCycle, reason: "profile parent chain loops: \(loop)")
            }
            visited.append(current)
            guard let settings = profile(current) else { break }
            chain.append(settings)
            next = settings.string("parent")
        }
        var result = global
        for settings in chain.reversed() { result = result.merging(settings) }
        result.removeValue(forKey: "parent")
        result.removeValue(forKey: "version")
        return result
    }

    /// Merges the built-in defaults, `configure` arguments and this rc file the way Perl's
    /// `find_profile` does.
    ///
    /// Order, lowest first: ``perlDefaults``, then the `arguments`, then the rc file
    /// (``inheritedSettings(of:)``), so the rc file wins. With a true `force` argument the arguments
    /// win over the rc file instead; with a true `norc` argument the rc file is not consulted. The
    /// result has no `profile`, `parent`, `norc` or `force` key.
    ///
    /// Perl: `AnyEvent::MP::Config::find_profile $name, %kv`. Difference: with `force`, Perl lets its
    /// built-in defaults override the rc file too (the defaults travel with the arguments); here the
    /// defaults always stay the lowest layer.
    ///
    /// - Parameters:
    ///   - name: the profile name, or `nil` for the global settings alone.
    ///   - arguments: the `configure` arguments (may contain `norc` and `force`).
    /// - Returns: the effective settings.
    /// - Throws: ``ConfigFileError/Code/parentCycle`` if the `parent` chain loops.
    public func findProfile(_ name: String?, arguments: ProfileSettings) throws(ConfigFileError) -> ProfileSettings {
        var arguments = arguments
        let norc = arguments.removeValue(forKey: "norc")?.perlTruth ?? false
        let force = arguments.removeValue(forKey: "force")?.perlTruth ?? false
        var result = Self.perlDefaults
        if norc {
            result = result.merging(arguments)
        } else {
            let rc = try inheritedSettings(of: name)
            result = force ? result.merging(rc).merging(arguments) : result.merging(arguments).merging(rc)
        }
        for key in Self.lookupKeys { result.removeValue(forKey: key) }
        return result
    }
}
