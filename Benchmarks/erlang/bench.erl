%% Erlang distribution reference for Benchmarks/node-bench.sh: the same workload as
%% NodeBenchmarks (Benchmarks/NodeBenchmarks/main.swift) between two Erlang nodes on loopback.
%%
%%   server:  erl -name bench_server@127.0.0.1 -setcookie C -noshell -pa DIR -eval 'bench:serve(600)'
%%   driver:  erl -name bench_driver@127.0.0.1 -setcookie C -noshell -pa DIR \
%%                -eval 'bench:drive(bench_server@127.0.0.1, 200000, 10000)'
%%
%% throughput: N one-way messages {I, <<32-byte payload>>} to the registered process bench_sink on
%% the server, then {done, self()}; the sink replies {count, N}. Timed from the first send to the
%% reply. Round trips: {self(), Seq} to bench_echo, which replies Seq; the next ping leaves when
%% the pong arrives. Output lines: "RESULT impl=erlang ...", as NodeBenchmarks prints them.
-module(bench).
-export([serve/1, drive/3]).

-define(PAYLOAD, <<"payload of thirty-two bytes 0123">>).

%% Registers the sink and the echo process, then stops the node after Lifetime seconds.
serve(Lifetime) ->
    register(bench_sink, spawn(fun() -> sink(0) end)),
    register(bench_echo, spawn(fun echo/0)),
    io:format("READY impl=erlang node=~s~n", [node()]),
    timer:sleep(Lifetime * 1000),
    halt(0).

sink(Count) ->
    receive
        {done, From} when is_pid(From) ->
            From ! {count, Count},
            sink(0);
        {_I, _Payload} ->
            sink(Count + 1)
    end.

echo() ->
    receive
        {From, Seq} when is_pid(From) -> From ! Seq
    end,
    echo().

drive(Server, N, M) ->
    try
        connect(Server, 2000),
        %% warm-up, then the timed runs (as the Swift driver does)
        {_, _} = throughput(Server, max(N div 10, 1)),
        _ = ping_pong(Server, max(M div 10, 1)),
        {Count, Nanos} = throughput(Server, N),
        Count =:= N orelse exit({sink_counted, Count, N}),
        Seconds = Nanos / 1.0e9,
        io:format("RESULT impl=erlang framing=dist metric=throughput n=~b seconds=~.4f msgs_per_s=~b~n",
                  [N, Seconds, round(N / Seconds)]),
        Samples = lists:sort(ping_pong(Server, M)),
        Len = length(Samples),
        Mean = lists:sum(Samples) div Len,
        io:format("RESULT impl=erlang framing=dist metric=rtt n=~b p50_us=~s p99_us=~s mean_us=~s min_us=~s~n",
                  [Len, us(percentile(Samples, 50)), us(percentile(Samples, 99)), us(Mean), us(hd(Samples))]),
        halt(0)
    catch
        Class:Reason ->
            io:format(standard_error, "bench:drive failed: ~p:~p~n", [Class, Reason]),
            halt(2)
    end.

%% Pings the server node every 10 ms until it answers (Tries times at most).
connect(Server, 0) -> exit({cannot_connect, Server});
connect(Server, Tries) ->
    case net_adm:ping(Server) of
        pong ->
            %% the server's processes are registered right after it starts distribution
            case rpc:call(Server, erlang, whereis, [bench_echo]) of
                Pid when is_pid(Pid) -> ok;
                _ -> timer:sleep(10), connect(Server, Tries - 1)
            end;
        pang -> timer:sleep(10), connect(Server, Tries - 1)
    end.

throughput(Server, N) ->
    Sink = {bench_sink, Server},
    Start = erlang:monotonic_time(nanosecond),
    blast(Sink, 0, N),
    Sink ! {done, self()},
    receive
        {count, Count} -> {Count, erlang:monotonic_time(nanosecond) - Start}
    after 120000 -> exit(no_count_from_sink)
    end.

blast(_Sink, N, N) -> ok;
blast(Sink, I, N) ->
    Sink ! {I, ?PAYLOAD},
    blast(Sink, I + 1, N).

ping_pong(Server, M) -> ping_pong({bench_echo, Server}, 0, M, []).

ping_pong(_Echo, M, M, Acc) -> Acc;
ping_pong(Echo, Seq, M, Acc) ->
    Start = erlang:monotonic_time(nanosecond),
    Echo ! {self(), Seq},
    receive
        Seq -> ping_pong(Echo, Seq + 1, M, [erlang:monotonic_time(nanosecond) - Start | Acc])
    after 120000 -> exit(no_pong)
    end.

%% Nearest-rank percentile of a sorted list.
percentile(Sorted, P) ->
    Len = length(Sorted),
    Rank = max(1, min(Len, ceil(P / 100 * Len))),
    lists:nth(Rank, Sorted).

us(Nanos) -> io_lib:format("~.1f", [Nanos / 1000]).
