"""The public HTTP routes, served in the app's own process beside Streamlit (server.py mounts them in st.App):
one-click unsubscribe, calendar feeds, one-use downloads, and the health check."""
