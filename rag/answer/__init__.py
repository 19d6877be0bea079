"""Composing the answer: the models a pipeline answers with, the answer, refusal or conflict
it shows, and a conversation's follow-up questions."""
