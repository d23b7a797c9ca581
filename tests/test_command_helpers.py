"""The helpers every command line shares: one ``main`` (bad input is one ``error:`` line and status 2),
the range-checked argument types, and the listen-address rules of the class server."""

from __future__ import annotations

import argparse
import socket

import pytest

from experiments.arguments import OneLineArgumentParser, command_main, ranged_float, ranged_int
from experiments.server.addresses import local_address, public_address
from experiments.server.class_server import free_port, port_in_use
from experiments.settings import UserInputError


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="demo")
    parser.add_argument("--n", type=ranged_int(1, 5, "accepted: 1 to 5"), default=1)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.n == 4:
        raise UserInputError("n=4 is taken; accepted: another n")
    return 10 + args.n


@pytest.mark.parametrize(("argv", "status", "message"), [
    (["--n", "3"], 13, ""),
    (["--n", "9"], 2, "error: argument --n: '9' is out of range; accepted: 1 to 5\n"),
    (["--n", "x"], 2, "error: argument --n: 'x' is not an integer; accepted: 1 to 5\n"),
    (["--n", "4"], 2, "error: n=4 is taken; accepted: another n\n"),
    (["--help"], 0, ""),
])
def test_command_main_turns_bad_input_into_one_line_and_status_2(argv, status, message, capsys) -> None:
    assert command_main(_parser().parse_args, _run, argv) == status
    assert capsys.readouterr().err == message


def test_ranged_types_name_the_value_and_what_is_accepted() -> None:
    rate = ranged_float("accepted: p with 0 <= p < 1", at_least=0.0, below=1.0)
    assert rate("0") == 0.0 and rate("0.5") == 0.5
    for bad, why in [("1", "out of range"), ("-0.1", "out of range"), ("nan", "not finite"), ("one", "not a number")]:
        with pytest.raises(argparse.ArgumentTypeError, match=f"'{bad}' is {why}; accepted: p with 0 <= p < 1"):
            rate(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="'0' is not positive"):
        ranged_float("accepted: > 0", above=0.0)("0")
    with pytest.raises(argparse.ArgumentTypeError, match="'1' is too small; accepted: >= 2"):
        ranged_int(2, None, "accepted: >= 2")("1")


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::", "*"])
def test_a_wildcard_host_is_loopback_here_and_the_host_name_for_students(wildcard: str) -> None:
    assert local_address(wildcard) == "127.0.0.1"
    assert public_address(wildcard) == socket.gethostname()
    assert public_address("10.1.2.3") == local_address("10.1.2.3") == "10.1.2.3"


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "*", "::"])
def test_free_port_binds_every_listen_address_and_the_port_is_free(host: str) -> None:
    if host == "::" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    port = free_port(host)
    assert 0 < port < 65536 and not port_in_use(host, port)
    with socket.socket() as listener:  # once something listens there, it is in use
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert port_in_use("127.0.0.1", port) and port_in_use("0.0.0.0", port)
