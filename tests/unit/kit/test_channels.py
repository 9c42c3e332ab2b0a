from services.kit.channels import ServiceChannel


async def test_the_channel_opens_once_and_reopens_after_close() -> None:
    channel = ServiceChannel("127.0.0.1:9")
    first = channel.get()
    assert channel.get() is first
    await channel.close()
    await channel.close()  # closing twice is harmless
    second = channel.get()
    assert second is not first
    await channel.close()
