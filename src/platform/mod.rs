//! The ad platform: Meta's Graph API client and the local Meta sandbox.
