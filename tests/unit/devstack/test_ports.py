import socket
from collections.abc import Iterator

import pytest

from devstack.errors import DevstackError
from devstack.ports import LOOPBACK, check_ports_free, free_port, is_port_free


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_listening_port_is_not_free(taken_port: int) -> None:
    assert not is_port_free(taken_port)


def test_the_error_names_the_port_its_owner_and_the_way_out(taken_port: int) -> None:
    with pytest.raises(DevstackError) as caught:
        check_ports_free([(taken_port, "ledger gRPC")])
    message = str(caught.value)
    assert message.startswith(f"port {taken_port} (ledger gRPC) is already in use")
    assert f"sport = :{taken_port}" in message
    assert "WALLET_PORT_OFFSET" in message


def test_free_port_gives_a_bindable_loopback_port() -> None:
    port = free_port()
    assert 0 < port < 65536
    check_ports_free([])  # nothing to check, nothing raised
