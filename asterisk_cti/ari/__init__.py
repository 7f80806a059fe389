"""How the SDK talks back to Asterisk: the REST client (one pooled session, deadlines, typed
errors, validated answers) and the application's event subscriptions."""
