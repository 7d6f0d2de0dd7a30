import AEMPCodecs
import AEMPHandle
import NIOCore

extension TransportConnection {
    /// The liveness check of one connection in the data phase (``NodeConfiguration/livenessTimeout``).
    ///
    /// A timer looks every tenth of the timeout (at most every 0.5 s). Life is a read since the last look, or the socket
    /// taking bytes of a backlog (the kernel's send buffer was full, so the bytes it took were
    /// acknowledged: the peer reads a transfer and has nothing to say). After a third of the timeout
    /// without life a probe goes out (at most one per third); after the whole timeout the connection
    /// ends as lost. Time in which this node's own loop did not run (a blocked loop, a stopped
    /// process) is not counted. Looking at the counters only on the timer keeps the read path free of
    /// clocks.
    struct Liveness {
        let timeout: Duration
        let probeInterval: Duration
        let tick: Duration
        var lastLife: NIODeadline
        var lastProbe: NIODeadline
        /// When the timer last ran: a much later run means this node's own loop was not running
        /// (blocked, or the process stopped), which is no evidence against the peer.
        var lastTick: NIODeadline
        var seenReadEvents: UInt64
        var lastAccepted: UInt64
        var lastBacklog: Int
        var timer: Scheduled<Void>?

        init(timeout: Duration, now: NIODeadline, readEvents: UInt64, accepted: UInt64) {
            self.timeout = timeout
            probeInterval = timeout / 3
            // A read counts from the check that sees it, so detection can come one check late:
            // checks every tenth of the timeout, at most 0.5 s apart, keep that within the timeout + 0.5 s.
            tick = max(min(timeout / 10, .milliseconds(500)), .milliseconds(10))
            lastLife = now
            lastProbe = now
            lastTick = now
            seenReadEvents = readEvents
            lastAccepted = accepted
            lastBacklog = 0
        }
    }

    /// The text of the kill reason: `no data for 10 s` (whole seconds when whole, else one decimal).
    static func silenceMessage(_ timeout: Duration) -> String {
        let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        let tenths = (milliseconds + 50) / 100
        let text = tenths % 10 == 0 ? String(tenths / 10) : "\(tenths / 10).\(tenths % 10)"
        return "no data for \(text) s"
    }

    /// The probe: a kernel `snd` relay through the peer's node port back to our own node port, with
    /// the empty tag (a no-op on every node). Every AEMP node answers it, Perl's included.
    var livenessProbe: [Value] { [.text(""), .text("snd"), .text("\(configuration.nodeID.rawValue)#"), .text("")] }

    func startLiveness() {
        let timeout = configuration.livenessTimeout
        guard timeout > .zero, liveness == nil else { return }
        liveness = Liveness(
            timeout: timeout, now: .now(), readEvents: readEvents, accepted: handle.socketAcceptedBytes)
        scheduleLivenessTick()
    }

    func stopLiveness() {
        liveness?.timer?.cancel()
        liveness = nil
    }

    private func scheduleLivenessTick() {
        guard let tick = liveness?.tick else { return }
        // A strong capture: `stopLiveness` (on every way out, through `detach`) cancels the timer,
        // which lets go of it. (A weak one would give the connection a side table, making each
        // retain of it on the message path dearer.)
        liveness?.timer = handle.eventLoop.assumeIsolated().scheduleTask(in: tick.timeAmount) {
            self.livenessTick()
        }
    }

    private func livenessTick() {
        guard isConnected, var state = liveness else { return }
        let now = NIODeadline.now()
        // Time this node itself did not run does not count as the peer's silence: after our own
        // pause the peer gets the whole timeout to show life again.
        let late = now - state.lastTick - state.tick.timeAmount
        if late > state.tick.timeAmount { state.lastLife = state.lastLife + late }
        state.lastTick = now
        if readEvents != state.seenReadEvents {
            state.seenReadEvents = readEvents
            state.lastLife = now
        }
        let accepted = handle.socketAcceptedBytes
        if state.lastBacklog > 0 && accepted != state.lastAccepted { state.lastLife = now }
        state.lastAccepted = accepted
        state.lastBacklog = handle.socketBacklog
        let silence = now - state.lastLife
        if silence >= state.timeout.timeAmount {
            liveness = state
            traffic.livenessTimeouts &+= 1
            finish(Self.silenceMessage(state.timeout), authenticated: true)
            return
        }
        let probeInterval = state.probeInterval.timeAmount
        if silence >= probeInterval && now - state.lastProbe >= probeInterval {
            state.lastProbe = now
            liveness = state
            traffic.livenessProbes &+= 1
            try? send(livenessProbe)
            guard isConnected else { return }
        } else {
            liveness = state
        }
        scheduleLivenessTick()
    }
}
