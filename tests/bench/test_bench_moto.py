"""The benches' DynamoDB store on moto: a slow answer is waited for, not sent again.

moto runs overlapping TransactWriteItems without isolation (each restores its own backup of the
tables when it fails), so a client retry sent while moto still runs the first attempt can erase
that attempt's writes, which the store has acknowledged: a decision logged by the bench was then
not found by the next get_decision. See ``bench.common.MOTO_CALL_TIMEOUT_S``.
"""

from __future__ import annotations

from bench.common import MOTO_CALL_TIMEOUT_S, bench_settings, open_store

from agent_memory.memory.identity import Caller
from agent_memory.memory.service import Memory
from agent_memory.models import utcnow
from agent_memory.storage.dynamodb.engine import DynamoEngine
from agent_memory.storage.dynamodb.requests import timeouts


async def test_bench_store_waits_for_moto_instead_of_retrying_a_transaction(moto_endpoint: str) -> None:
    async with open_store("dynamodb", endpoint=moto_endpoint) as store:
        engine = store.engine
        assert isinstance(engine, DynamoEngine)
        config = engine._client.meta.config
        default_read_timeout = timeouts().read_timeout
        # Minutes, not the default's seconds: moto on a loaded machine has taken longer than
        # the default over one transaction.
        assert config.read_timeout == MOTO_CALL_TIMEOUT_S / 4
        assert config.read_timeout >= 100 * default_read_timeout
        assert engine.call_timeout == MOTO_CALL_TIMEOUT_S

        memory = Memory(store, bench_settings(), utcnow)
        me = Caller("bench")
        await memory.register(me)
        for i in range(20):
            decision, created = await memory.log_decision(me, "SOURCE_SELECTION", context={"cycle": i})
            assert created
            assert (await memory.get_decision(me, decision.decision_id)) == decision
