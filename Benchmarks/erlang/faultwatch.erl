%% Erlang distribution reference for Benchmarks/erlang/fault-detect.sh (issue #12 item 4): how long
%% a node takes to see a silent peer go down (SIGSTOPped, or cut off by a partition).
%%
%%   peer:     erl -name b@ADDR -setcookie C -kernel net_ticktime T -noshell -pa DIR \
%%                 -run faultwatch peer
%%   watcher:  erl -name a@ADDR -setcookie C -kernel net_ticktime T -noshell -pa DIR \
%%                 -run faultwatch watch b@ADDR T "FAULT COMMAND"
%%
%% The peer prints "READY os_pid=P" (P is its beam.smp process, the one to SIGSTOP) and idles.
%% The watcher connects, calls monitor_node(Peer, true) and lets the connection settle for 1 s plus
%% two tick intervals (net_ticktime/4 each: by then the handshake and global's sync are over and
%% the idle peer ticks once per interval), then waits a random part of one more interval (so that
%% the fault falls at a random phase of both nodes' tickers), runs the fault command with
%% os:cmd/1 and times, on its own monotonic clock, from the moment that command has returned to
%% the arrival of {nodedown, Peer}. Meanwhile a poller reads the connection's recv_cnt every 5 ms,
%% to tell how long before the fault the last packet from the peer had arrived (rx_gap_ms; on an
%% idle connection that is the peer's last tick, at most one tick interval old). Output: one line
%%   RESULT detect_s=S cmd_ms=M rx_gap_ms=G          (or FAILED reason=...)
%% and the node halts (exit status 0 on RESULT, 2 otherwise).
-module(faultwatch).
-export([peer/0, watch/1]).

peer() ->
    io:format("READY os_pid=~s node=~s~n", [os:getpid(), node()]),
    receive never -> ok end.

watch([PeerName, TickText, FaultCmd]) ->
    try
        Peer = list_to_atom(PeerName),
        TickTime = list_to_integer(TickText),
        %% what this node runs with, not what the command line asked for
        TickTime =:= net_kernel:get_net_ticktime() orelse
            exit({net_ticktime, net_kernel:get_net_ticktime(), TickTime}),
        connect(Peer, 500),
        true = monitor_node(Peer, true),
        Interval = TickTime * 1000 div 4,
        Poller = start_poller(Peer),
        timer:sleep(1000 + 2 * Interval + rand:uniform(Interval)),
        lists:member(Peer, nodes()) orelse exit({lost_before_fault, Peer}),
        T0 = erlang:monotonic_time(microsecond),
        CmdOutput = os:cmd(FaultCmd),
        T1 = erlang:monotonic_time(microsecond),
        CmdOutput =:= "" orelse exit({fault_command_said, CmdOutput}),
        Poller ! {last_rx, self()},
        LastRx = receive {last_rx, Poller, At} -> At after 1000 -> exit(poller_silent) end,
        %% the designed upper bound is 1.25 * net_ticktime; give it twice that and 10 s more
        Limit = 2 * TickTime * 1000 + 10000,
        receive
            {nodedown, Peer} ->
                T2 = erlang:monotonic_time(microsecond),
                io:format("RESULT detect_s=~.3f cmd_ms=~.1f rx_gap_ms=~b~n",
                          [(T2 - T1) / 1.0e6, (T1 - T0) / 1000, (T1 - LastRx) div 1000]),
                halt(0)
        after Limit ->
            exit({no_nodedown_within_ms, Limit})
        end
    catch
        Class:Reason ->
            io:format("FAILED reason=~p:~p~n", [Class, Reason]),
            halt(2)
    end.

%% A process that notes when the connection's received-packet count last went up, polling every
%% 5 ms; {last_rx, From} asks for that moment (monotonic, microseconds).
start_poller(Peer) ->
    [Port] = [P || {N, P} <- erlang:system_info(dist_ctrl), N =:= Peer],
    is_port(Port) orelse exit({not_a_port, Port}),
    spawn_link(fun() -> poll(Port, -1, erlang:monotonic_time(microsecond)) end).

poll(Port, Count, At) ->
    receive
        {last_rx, From} -> From ! {last_rx, self(), At}
    after 5 ->
        case inet:getstat(Port, [recv_cnt]) of
            {ok, [{recv_cnt, Count}]} -> poll(Port, Count, At);
            {ok, [{recv_cnt, New}]} -> poll(Port, New, erlang:monotonic_time(microsecond));
            _ -> poll(Port, Count, At)
        end
    end.

%% Pings the peer every 10 ms until it answers (Tries times at most).
connect(Peer, 0) -> exit({cannot_connect, Peer});
connect(Peer, Tries) ->
    case net_adm:ping(Peer) of
        pong -> ok;
        pang -> timer:sleep(10), connect(Peer, Tries - 1)
    end.
