#!/usr/bin/perl
# A slice allocator written in Perl, plugged into the conformance suite with
#
#     memslice-conformance validate-protocol --impl "cmd:perl slice_impl.pl"
#     memslice-conformance run --impl "cmd:perl slice_impl.pl"
#
# It speaks memslice-jsonl v1 (schema/protocol-v1.json): one JSON request per
# line on stdin, one response per line on stdout, in request order.  Memory is
# one Perl string standing for an address space that starts at $BASE; a block
# is a chunk (size rounded up to 16) carved from the top or reused from a
# per-chunk-size free list.  Perl has no threads here, so "thread" names are
# accepted and ignored: ops still run in order, which the protocol allows.
use strict;
use warnings;
use JSON::PP;

my $json = JSON::PP->new->canonical;
my $BASE = 0x100000000;          # first address handed out; never 0 (NULL)
my $mem  = "\0" x (1 << 20);     # grows by doubling as chunks are carved
my $top  = 0;
my %free;                        # chunk size -> [addresses], LIFO
$| = 1;

sub chunk { my ($n) = @_; return ($n + 15) & ~15 }

sub carve {
    my ($c) = @_;
    my $addr = $BASE + $top;
    $top += $c;
    $mem .= "\0" x length($mem) while $top > length($mem);
    return $addr;
}

sub alloc {
    my ($n) = @_;
    return 0 unless $n;          # NULL iff the size is 0 (API-001)
    my $list = $free{ chunk($n) } ||= [];
    return @$list ? pop @$list : carve(chunk($n));
}

sub offset_of {
    my ($addr, $n) = @_;
    my $off = $addr - $BASE;
    die "address outside the arena\n" if $off < 0 || $off + $n > $top;
    return $off;
}

sub put { my ($addr, $bytes) = @_; substr($mem, offset_of($addr, length $bytes), length $bytes) = $bytes }
sub get { my ($addr, $n) = @_; return substr($mem, offset_of($addr, $n), $n) }

sub free1 {
    my ($n, $addr) = @_;
    return unless $addr;         # freeing NULL does nothing (API-007)
    push @{ $free{ chunk($n) } }, $addr;
}

my %ops = (
    hello => sub {
        +{ protocol => "memslice-jsonl", version => 1,
           implementation => "perl-example", profiles => ["core"] };
    },
    alloc  => sub { alloc($_[0]{size}) },
    alloc0 => sub {
        my $addr = alloc($_[0]{size});
        put($addr, "\0" x $_[0]{size}) if $addr;
        $addr;
    },
    copy => sub {
        my ($n, $src) = @{ $_[0] }{qw(size src)};
        my $addr = alloc($n);
        put($addr, get($src, $n)) if $addr;
        $addr;
    },
    free1 => sub { free1($_[0]{size}, $_[0]{addr}); undef },
    free_chain_with_offset => sub {
        my ($n, $node, $off) = @{ $_[0] }{qw(size head next_offset)};
        while ($node) {
            my $next = unpack("Q<", get($node + $off, 8));   # read the link first (API-008)
            free1($n, $node);
            $node = $next;
        }
        undef;
    },
    write            => sub { put($_[0]{addr}, pack("H*", $_[0]{data})); undef },
    read             => sub { unpack("H*", get($_[0]{addr}, $_[0]{size})) },
    set_config       => sub { undef },
    get_config       => sub { 0 },
    get_config_state => sub { undef },
    thread_exit      => sub { undef },
    shutdown         => sub { undef },
);

while (my $line = <STDIN>) {
    next unless $line =~ /\S/;
    my $req = eval { $json->decode($line) } || {};
    my $name = $req->{op} // "";
    my $op = $ops{$name};
    my $resp;
    if ($op) {
        my $result = eval { $op->($req) };
        $resp = $@ ? +{ id => $req->{id}, ok => JSON::PP::false,
                        error => { type => "Error", message => "$@" } }
                   : +{ id => $req->{id}, ok => JSON::PP::true, result => $result };
    } else {
        $resp = +{ id => $req->{id}, ok => JSON::PP::false,
                   error => { type => "ProtocolError", message => "unknown op" } };
    }
    print $json->encode($resp), "\n";
    last if $name eq "shutdown";
}
