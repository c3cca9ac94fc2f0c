"""An openai-agents agent on its default model class (the Responses API) against a real
server on the bundled model, calling a function tool end to end."""

from __future__ import annotations

import asyncio

import openai
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from tests.servers import ServerThread


def test_an_agent_calls_a_function_tool_through_the_responses_api(server: ServerThread) -> None:
    set_tracing_disabled(True)
    seen: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        seen.append(city)
        return f"Sunny in {city}"

    async def run() -> object:
        client = openai.AsyncOpenAI(
            base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120
        )
        agent = Agent(
            name="weather",
            instructions="Answer questions about the weather using the tool.",
            tools=[get_weather],
            model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client),
            model_settings=ModelSettings(tool_choice="get_weather", max_tokens=40, temperature=0),
            tool_use_behavior="stop_on_first_tool",
        )
        result = await Runner.run(agent, "What is the weather in Paris?", max_turns=2)
        await client.close()
        return result

    result = asyncio.run(run())
    assert len(seen) == 1 and seen[0]
    assert result.final_output == f"Sunny in {seen[0]}"  # type: ignore[attr-defined]
    [response] = result.raw_responses  # type: ignore[attr-defined]
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
