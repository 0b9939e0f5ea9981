"""Pure translation between vendor wire shapes and the canonical form (Anthropic Messages).

canonical        the shared record types (Usage), content helpers, MessageAccumulator, errors
anthropic        canonical <-> Anthropic backend (pass-through, stream order and usage)
openai_request   OpenAI chat request <-> canonical request (client side and backend side)
openai_response  canonical message <-> chat.completion
openai_stream    canonical events <-> chat.completion.chunk streams
gemini           canonical <-> generateContent request and response
gemini_stream    streamGenerateContent frames -> canonical events
event_writer     the event-sequence bookkeeping the stream translators share

Nothing here does I/O or imports beyond the standard library: translation is testable on dicts.
"""
