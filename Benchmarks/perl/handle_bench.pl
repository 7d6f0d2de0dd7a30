#!/usr/bin/perl
# The Perl side of HandleBenchmarks: an AnyEvent::Handle reader doing the same work as the
# Swift Handle, against the same sender.
#   handle_bench.pl line  HOST PORT COUNT   reads COUNT lines with push_read (line)
#   handle_bench.pl chunk HOST PORT BYTES   reads BYTES bytes with push_read (chunk => 65536)
# Prints "seconds <elapsed> units <count>", timed from on_connect to the last read.
use strict;
use warnings;
use AnyEvent;
use AnyEvent::Handle;
use Time::HiRes qw(time);

my ($mode, $host, $port, $total) = @ARGV;
die "usage: $0 line|chunk HOST PORT TOTAL\n" unless defined $total;

my $done = AE::cv;
my ($start, $count) = (0, 0);
my $handle;
$handle = AnyEvent::Handle->new(
    connect    => [$host, $port],
    on_error   => sub { die "handle error: $_[2]\n" },
    on_connect => sub { $start = time },
);

if ($mode eq "line") {
    my $reader;
    $reader = sub {
        $count++;
        if ($count >= $total) { $done->send; return }
        $handle->push_read (line => $reader);
    };
    $handle->push_read (line => $reader);
} elsif ($mode eq "chunk") {
    my $reader;
    $reader = sub {
        $count += length $_[1];
        if ($count >= $total) { $done->send; return }
        $handle->push_read (chunk => 65536, $reader);
    };
    $handle->push_read (chunk => 65536, $reader);
} else {
    die "unknown mode $mode\n";
}

$done->recv;
printf "seconds %.6f units %d\n", time - $start, $count;
