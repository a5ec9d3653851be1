#!/usr/bin/env python3
"""Generate peftops' own synthetic demo text-classification datasets.

Two domains are written, each as stratified train/validation/test CSV files with the columns
``text,label``:

* ``finance``: customer messages to an online bank's support team (8 intents).
* ``healthcare``: patient-portal messages to a clinic, for triage (7 intents).

Every message is composed from hand-written templates (authored for peftops, not taken from any
existing dataset), slot fills, optional openers/closers/context sentences and a few "register"
tweaks (lowercase, missing final punctuation, abbreviations, typos). Generation is fully
deterministic: the same ``--seed`` always produces byte-identical files. Healthcare texts never
contain names, contact details, identifiers or dates (only small numbers such as doses or
temperatures).

The data is meant to be moderately hard, like real support traffic: many messages are "hard"
phrasings (a neighbouring intent's keywords used in passing or negated, indirect wording, very
short messages) or carry a side remark about another intent, so that a frozen-embedding probe
reaches only about 0.80-0.90 accuracy and fine-tuning has room to show its value. Every label
is still the one a human reader would give; no label noise is added.

Usage::

    python scripts/make_demo_data.py [--out data] [--seed 13]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from collections.abc import Callable
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------

SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))

MIN_CHARS, MAX_CHARS = 10, 600
MIN_WORDS, MAX_WORDS = 3, 60

# Probabilities of the register tweaks / optional parts.
P_OPENER = 0.55
P_CLOSER = 0.5
P_LOWER_AFTER_OPENER = 0.65
P_CONTEXT_FIRST = 0.5
P_LOWERCASE = 0.08
P_TEXTSPEAK = 0.35
P_NO_FINAL_PUNCT = 0.12
P_ABBREVIATE = 0.3  # casual abbreviations and dropped apostrophes ("pls", "acct", "dont")
P_ABBREVIATION_EACH = 0.7  # each matching abbreviation, once a message is abbreviated
P_TYPO = 0.3  # one or two typos (swapped, dropped or doubled letters)
P_SECOND_ASIDE = 0.3  # a second statement about another intent, once there is one
# Number of extra context / follow-up sentences: (count, cumulative probability).
EXTRA_COUNTS = ((1, 0.25), (2, 0.37), (3, 0.43))

# --------------------------------------------------------------------------------------------
# Finance: customer messages to an online bank
# --------------------------------------------------------------------------------------------

# fmt: off

FIN_OPENERS = (
    "Hi!", "Hello.", "Morning!", "Hi team!",
    "Hi,", "Hello,", "Hello team,", "Hi there,", "Good morning,", "Good afternoon,",
    "Good evening,", "Hey,", "Dear support,", "Hi support team,", "Hi again,", "Hello there,",
)
FIN_CLOSERS = (
    "Thanks.", "Thanks!", "Thank you.", "Please help asap.", "Cheers.", "Appreciate it.",
    "Thanks in advance.", "Any help appreciated.", "Kind regards.", "Please get back to me today.",
    "This is really frustrating.", "Thank you for your help.", "Please sort this out.",
    "Looking forward to your reply.", "Many thanks.",
)
FIN_GENERIC_CONTEXT = (
    "I've been a customer for {years} years.", "I'm using {device}.",
    "I have a joint account with my partner.",
)
FIN_GENERIC_FOLLOWUPS = (
    "This is the second time I'm writing about this.", "I'd appreciate a quick reply.",
    "I tried the chat bot but it didn't help.", "Nobody answered when I tried calling.",
    "I've been waiting on hold for ages.",
)

FIN_SLOTS: dict[str, tuple[str, ...]] = {
    "merchant": (
        "Amazon", "Tesco", "Uber", "Netflix", "Spotify", "a petrol station", "Airbnb",
        "Booking.com", "Zara", "the Apple Store", "Steam", "Deliveroo", "a local cafe", "IKEA",
        "eBay", "Lidl", "Sainsbury's", "a pharmacy", "H&M", "a restaurant", "Starbucks",
        "an online shop", "Decathlon", "Aldi", "Currys", "Etsy", "a hotel", "a taxi company",
    ),
    "airline": ("Ryanair", "easyJet", "Lufthansa", "KLM", "Vueling", "Wizz Air", "TAP"),
    "card": (
        "debit card", "credit card", "card", "virtual card", "Visa card", "Mastercard",
        "physical card", "business card", "joint account card",
    ),
    "when": (
        "yesterday", "this morning", "last night", "on Saturday", "two days ago", "earlier today",
        "last week", "on Monday", "over the weekend", "an hour ago", "on Friday evening",
        "a few days ago",
    ),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the 1st", "the 15th"),
    "duration": (
        "3 days", "a week", "over a week", "5 working days", "two days", "48 hours",
        "more than 10 days", "six days", "four days", "nearly two weeks",
    ),
    "country": (
        "Spain", "France", "the US", "Japan", "Thailand", "Portugal", "Mexico", "Poland", "Italy",
        "Turkey", "Canada", "Greece", "Germany", "Croatia", "Morocco", "Vietnam",
    ),
    "city": (
        "Lisbon", "Madrid", "Paris", "Berlin", "New York", "Rome", "Bangkok", "Prague",
        "Amsterdam", "Dublin", "Barcelona", "Krakow", "Tokyo", "Athens",
    ),
    "place_lost": (
        "on the bus", "at the gym", "in a bar", "at the train station", "at a festival",
        "on the tube", "in a taxi", "at the airport", "in a shopping centre", "at a concert",
    ),
    "currency": (
        "euros", "US dollars", "yen", "Swiss francs", "zloty", "Thai baht", "Turkish lira",
        "Canadian dollars", "pesos", "Czech koruna",
    ),
    "cur_code": ("GBP", "EUR", "USD", "JPY", "CHF", "PLN", "CAD", "SEK", "AUD"),
    "recipient": (
        "my landlord", "my sister", "a friend", "my mum", "my other bank account", "a supplier",
        "my brother", "my accountant", "a seller online", "my flatmate", "my builder", "my dad",
        "my savings account", "a colleague",
    ),
    "biller": (
        "my old gym", "my phone provider", "my previous energy supplier",
        "a magazine subscription", "my car insurance company", "a streaming service",
        "my broadband provider", "a charity", "my old mobile network", "the water company",
        "a meal kit company", "my former landlord", "a dating app", "a gym",
    ),
    "device": (
        "the iPhone app", "the Android app", "web banking", "the app on my tablet",
        "the app on my new phone", "the website on my laptop", "the app on my Samsung",
    ),
    "phone": ("iPhone", "Android phone", "new phone", "tablet", "Samsung", "Pixel", "work phone"),
    "app": ("the app", "the mobile app", "online banking", "the banking app", "my online banking"),
    "shop": (
        "Amazon", "Zara", "IKEA", "eBay", "H&M", "Currys", "Decathlon", "Etsy", "an online shop",
        "ASOS", "Argos", "John Lewis", "a furniture store", "Uniqlo",
    ),
    "subscription": (
        "Netflix", "Spotify", "Disney+", "a fitness app", "a news site", "Audible",
        "a cloud storage service", "a VPN service", "a language learning app",
    ),
    "wallet": ("Apple Pay", "Google Pay", "Samsung Pay", "my phone wallet", "PayPal"),
    "cryptic": (
        "PAYPAL *XJ SERVICES", "SQ *BLUEBIRD", "AMZN MKTP", "GOOGLE *SERVICES", "APL*ITUNES",
        "SP DIGITAL LTD", "CRV*GLOBALPAY", "WWW.BILLHELP.CO", "PP*NEXUSWEB", "ZTL*MEDIA SUBS",
        "TRN*ONLINEPAY",
    ),
    "fee_reason": (
        "an international transfer", "a cash withdrawal", "card replacement",
        "a foreign transaction", "an account upgrade", "going overdrawn",
    ),
    "years": ("2", "3", "5", "6", "8", "10", "12"),
}


def _fin_amount(rng: random.Random) -> str:
    """A realistic money amount such as '£42.10', '$250' or '120 EUR'."""
    value = rng.choice((rng.randint(3, 99), rng.randint(100, 999), rng.randint(1000, 2500)))
    with_pence = rng.random() < 0.45
    number = f"{value:,}.{rng.randint(0, 99):02d}" if with_pence else f"{value:,}"
    style = rng.randrange(4)
    if style == 0:
        return f"£{number}"
    if style == 1:
        return f"${number}"
    if style == 2:
        return f"€{number}"
    return f"{number} {rng.choice(('EUR', 'GBP', 'USD'))}"


def _fin_last4(rng: random.Random) -> str:
    return f"{rng.randint(0, 9999):04d}"


FIN_SLOT_FUNCS: dict[str, Callable[[random.Random], str]] = {
    "amount": _fin_amount,
    "last4": _fin_last4,
}

FINANCE: dict[str, dict[str, tuple[str, ...]]] = {
    "card_lost_or_stolen": {
        "templates": (
            "I think I lost my {card} somewhere {when}. Can you block it?",
            "My wallet was stolen {place_lost} and my {card} was in it.",
            "Please freeze my card, I can't find it anywhere.",
            "lost my card, need a replacement",
            "Someone stole my bag {when} with my {card} inside. What do I do now?",
            "How do I report a lost card in {app}? I can't see the option.",
            "I left my card in a cash machine in {city} and when I went back it was gone. "
            "Please cancel it.",
            "My card was pickpocketed while I was travelling in {country}. "
            "I need it blocked immediately.",
            "Can you send me a new card? The old one went missing {when}.",
            "I dropped my {card} {place_lost} and by the time I noticed it wasn't there anymore.",
            "Is it possible to get an emergency replacement card? Mine was stolen and I'm "
            "abroad in {country}.",
            "My card has disappeared. I've frozen it in {app} but I want to order a new one.",
            "Card stolen. Block it now please.",
            "I can't remember where I put my card, I last used it at {merchant} {when}. "
            "Should I cancel it or wait a bit?",
            "Our flat was broken into {when} and my cards were taken along with my laptop.",
            "My {card} was in my jacket which I left {place_lost}. How quickly can I get a "
            "replacement?",
            "Where is the button to report my card as stolen?",
            "My son borrowed my {card} and now he's lost it. Can you cancel it and send a new one?",
            "I need to cancel my card ending {last4}, it fell out of my pocket {place_lost}.",
            "My card is missing and I want it blocked before anyone uses it.",
            "I had my phone case with my card in it stolen {place_lost} in {city}. "
            "Please stop the card.",
            "can u block my card, think someone took it from my bag",
            "What happens to my pending payments if I report my card as lost?",
            "The cash machine kept my card and never gave it back. Do I need a new one?",
        ),
        "context": (
            "I've already checked my car and all my coat pockets.",
            "I'm travelling in {country} at the moment and have no other card with me.",
            "The last time I used it was at {merchant} {when}.",
            "I've frozen it temporarily in {app} just in case.",
            "I've already reported it to the police.",
            "I only noticed when I went to pay for lunch.",
        ),
        "followups": (
            "I haven't noticed any strange payments yet.",
            "Can the new card be sent to a different address?",
            "How long will the replacement take to arrive?",
            "Will my direct debits still work with the new card?",
        ),
    },
    "card_declined": {
        "templates": (
            "My card was declined at {merchant} {when} even though I have money in my account.",
            "Why does my card keep getting declined online?",
            "card declined at the supermarket again, what is going on",
            "I tried to pay {amount} at {merchant} and the payment was refused.",
            "My {card} isn't working in {country}. Every payment gets rejected.",
            "The terminal says declined every time I tap my card.",
            "I was so embarrassed at the checkout, my card was declined twice. "
            "There's plenty of balance. Please explain.",
            "Contactless isn't working on my card but chip and PIN does. Why is that?",
            "My card gets declined when I try to add it to {wallet}.",
            "Tried to book a flight with {airline} for {amount} and it failed with card declined.",
            "Can you check why my card was declined at {merchant}? It worked fine last week.",
            "Payment rejected at the petrol station. Is my card blocked?",
            "My card doesn't work at cash machines in {country}, it says transaction not allowed.",
            "Why was my card payment of {amount} refused? I'm not over any limit as far as I know.",
            "My {subscription} subscription failed because the card was declined.",
            "The new card you sent me gets declined everywhere. Did I need to activate it?",
            "The hotel in {city} couldn't take a deposit on my {card}, it was declined.",
            "Card not working. Declined in three shops today.",
            "Is there a daily spending limit? My card got declined after I spent {amount}.",
            "I keep getting do not honour errors when paying online with my card.",
            "My card got declined for {amount} at {merchant} but I can see the amount as "
            "pending in {app}. Was I charged or not?",
            "Online payments with my {card} fail at the 3D Secure step every single time.",
            "why is my card getting rejected?? I have over {amount} in there",
            "I got a text saying a payment at {merchant} was declined for security reasons. "
            "It was me, can you let it through?",
            "My card ending {last4} was declined at {merchant}, "
            "is there a problem with my account?",
        ),
        "context": (
            "I'm currently in {country} for work.",
            "The card is definitely not expired.",
            "I checked {app} and the card isn't frozen.",
            "I got paid {when} so there's definitely money in the account.",
        ),
        "followups": (
            "I had to pay with cash in the end.",
            "My partner's card from the same bank worked fine at the same place.",
            "The shop assistant said it wasn't a problem with their machine.",
            "It was the same when I tried {wallet}.",
            "There's no notification in the app explaining why.",
        ),
    },
    "transfer_pending": {
        "templates": (
            "I sent {amount} to {recipient} {when} and it still says pending.",
            "How long does a bank transfer usually take? Mine has been pending for {duration}.",
            "My transfer to {country} hasn't arrived yet.",
            "The money I sent to {recipient} {when} still hasn't arrived.",
            "transfer stuck on pending since {day}",
            "Why is my international transfer taking so long? It's been {duration}.",
            "I made a payment of {amount} to {recipient} but they say it hasn't reached them. "
            "The app shows it as processing.",
            "Can you check the status of my transfer? It was supposed to arrive {when}.",
            "I moved {amount} from my savings into my current account and it's still not there.",
            "I need that transfer to go through today, my rent is due. "
            "It's been pending for {duration}.",
            "Transfer to {recipient} has said in progress for {duration}. Is something wrong?",
            "Is there a reason my SEPA transfer is delayed?",
            "I topped up my account by bank transfer {when} and the money hasn't shown up.",
            "The recipient's bank says nothing has come in, but {amount} has already left my "
            "balance.",
            "Can I cancel a transfer that's pending? It's been stuck for {duration}.",
            "Why does my transfer to {country} need extra checks? It's still on hold.",
            "When will my pending transfer actually be completed?",
            "I sent money to family in {country} on {day} and they still haven't got it.",
            "Transfer not received by {recipient}. Sent {amount} {when}.",
            "Is there a delay with transfers today? Mine hasn't cleared.",
            "i paid {recipient} {amount} {when} and its still not gone through, why",
            "My salary was sent by my employer on {day} and it's not in my account yet.",
            "The transfer shows completed on my side but {recipient} hasn't received {amount}.",
        ),
        "context": (
            "I've sent money to them before without any issue.",
            "Normally transfers to them arrive within minutes.",
            "The details I entered were definitely correct.",
            "It's the deposit for a flat, so it's quite time sensitive.",
        ),
        "followups": (
            "It's quite urgent as I have bills to pay.",
            "The app doesn't give any reason for the delay.",
            "Can you give me a reference I can pass on to them?",
            "Do I need to do anything on my side?",
        ),
    },
    "refund_request": {
        "templates": (
            "I returned an item to {shop} {when} but haven't got my refund yet.",
            "How do I request a refund for a payment I made by mistake?",
            "I was charged twice for the same order at {merchant}. Can one of them be refunded?",
            "{merchant} says they refunded {amount} {duration} ago but it's not in my account.",
            "I cancelled my order and the shop promised a refund. When will I see it?",
            "Can you help me get my money back from {shop}? They never delivered my order.",
            "I'd like to raise a chargeback for {amount}, the seller isn't responding.",
            "My flight with {airline} was cancelled and I want a refund of {amount}.",
            "where is my refund from {merchant}",
            "The refund from {merchant} shows as pending, how long until it lands?",
            "I paid {amount} for a service that was never provided. How do I get refunded?",
            "Please refund the {amount} fee you charged me for {fee_reason}, "
            "I was told it would be free.",
            "I was overcharged at {merchant}, they took {amount} instead of {amount}. "
            "I need the difference back.",
            "The item was faulty so I sent it back to {shop} and they confirmed a refund. "
            "Still nothing.",
            "Can a refund still go to my card if the card has been replaced since?",
            "I want my money back for the hotel booking in {city}, they cancelled on me.",
            "Refund still not received. It's been {duration}.",
            "How long do refunds normally take to show up on my card?",
            "I accidentally paid the same invoice twice. Can you reverse one of the payments?",
            "The concert I paid {amount} for was cancelled, how do I claim the money back?",
            "i need a refund for {amount}, {shop} charged me for something i sent back",
            "The merchant gave me a refund receipt for {amount} {when} "
            "but I don't see it anywhere.",
            "Your bank charged me a fee for {fee_reason} by mistake, can I have it back?",
        ),
        "context": (
            "I paid with my {card}.",
            "The original payment was on {day}.",
            "It was a one-off purchase, not a subscription.",
            "I've emailed them three times with no answer.",
        ),
        "followups": (
            "I have the return receipt and tracking details if you need them.",
            "The merchant told me to contact my bank.",
            "Can you open a dispute for me?",
            "I'd like the money back on the same card.",
        ),
    },
    "login_problem": {
        "templates": (
            "I can't log into the app after updating my phone.",
            "The app keeps saying my password is wrong but I'm sure it's right.",
            "I'm not getting the verification code by SMS so I can't sign in.",
            "My account is locked after too many login attempts. How do I unlock it?",
            "Face ID stopped working for {app}.",
            "I got a new phone and now I can't access my account.",
            "can't log in to my account, keeps failing",
            "Forgot my passcode and the reset link never arrives.",
            "The app crashes every time I try to log in on my {phone}.",
            "I've been locked out of online banking for {duration}, it's really frustrating.",
            "It says session expired immediately after I log in.",
            "How do I reset my passcode for the app? I keep getting it wrong.",
            "The selfie verification keeps failing so I can't get into my account.",
            "My email address changed and now the login code goes to the old one.",
            "Web banking just shows a blank page after I enter my details.",
            "I'm abroad in {country} and the login code isn't arriving on my phone.",
            "I get an error saying something went wrong when signing in. "
            "Tried reinstalling, no luck.",
            "Why do I have to verify my identity every single time I open the app?",
            "Can't get into my account to check my balance, the app won't let me in.",
            "I need to pay something urgently but I can't log in!!",
            "Fingerprint login isn't working anymore on my {phone}.",
            "I changed my phone number and now I'm stuck on the security check at login.",
            "The website says my username doesn't exist, but I've banked with you for years.",
        ),
        "context": (
            "I've already restarted my phone twice.",
            "My phone is fully updated.",
            "I haven't changed anything on my account recently.",
            "It was working fine {when}.",
        ),
        "followups": (
            "I've tried on {device} as well with the same result.",
            "I can see my card still works, it's just the app.",
            "The help article didn't cover this error.",
            "I need to check my balance before paying rent.",
        ),
    },
    "exchange_rate": {
        "templates": (
            "What exchange rate do you use when I pay in {currency}?",
            "I was charged more than I expected for a purchase in {country}. "
            "Was the exchange rate wrong?",
            "Why is your rate for {currency} different from the one I see on Google?",
            "Is there a fee for converting {cur_code} to {cur_code}?",
            "The rate changed between when I paid and when the payment settled. Which one applies?",
            "How much will I get if I exchange {amount} into {currency}?",
            "Do you charge extra for currency exchange at weekends?",
            "I'm going to {country} next month, what's the best way to get a good rate?",
            "exchange rate seems really bad today",
            "Should I pay in local currency or in my home currency when the card machine asks?",
            "The rate I got for {currency} was terrible compared to what the app showed.",
            "Can I lock in an exchange rate before I travel to {country}?",
            "Why did a {amount} purchase in {country} cost me so much more than expected?",
            "What's the markup on your exchange rate?",
            "I withdrew cash in {city} and the conversion looks off.",
            "Is the exchange rate shown in {app} live or delayed?",
            "How often do you update your exchange rates?",
            "I got a refund in {currency} but it was converted at a different rate, "
            "so I lost money on it.",
            "Which exchange rate applies when I send money to {country}?",
            "Is there a limit on how much I can exchange at the interbank rate each month?",
            "what rate would i get for {cur_code} right now",
            "I paid {amount} in {city} and the amount in {cur_code} on my statement doesn't "
            "match any rate I can find.",
        ),
        "context": (
            "I use my {card} a lot when travelling.",
            "I'm planning a trip to {country} soon.",
            "I compared it with a currency converter website.",
        ),
        "followups": (
            "The difference is small but it adds up.",
            "I'd just like to understand how the conversion works.",
            "Is this explained anywhere in the app?",
        ),
    },
    "cancel_direct_debit": {
        "templates": (
            "How do I cancel a direct debit to {biller}?",
            "Please stop the direct debit for {biller}, I've ended the contract.",
            "I want to cancel my standing order to {recipient}.",
            "{biller} is still taking money by direct debit even though I left them.",
            "cancel direct debit for {biller} please",
            "Can I cancel a direct debit in {app} or do I need to call you?",
            "I want to stop {biller} from collecting payments from my account.",
            "There's a direct debit set up that I no longer need. How do I remove it?",
            "Please cancel all the recurring payments to {biller}.",
            "I cancelled my membership with {biller} but they're still set to take {amount} "
            "next month. Can you stop the mandate?",
            "How do I block future payments to {subscription}? I've already unsubscribed.",
            "I need to cancel a direct debit before it comes out on {day}.",
            "Can you remove the direct debit mandate for {biller}? I've switched providers.",
            "Where can I see all my direct debits so I can cancel a few?",
            "Stop the monthly payment to {biller} please.",
            "If I cancel a direct debit, will the company be told?",
            "I set up a direct debit with the wrong amount by mistake. Can I cancel it and start "
            "again?",
            "The gym won't let me cancel so I'd like you to stop the direct debit on your side.",
            "My direct debit to {biller} went up to {amount}, I want to cancel it and pay "
            "manually instead.",
            "want to get rid of the direct debit to {biller}, how",
            "I closed my account with {biller}, please make sure no more direct debits go out.",
            "Is it possible to cancel a direct debit that is due tomorrow?",
        ),
        "context": (
            "I've already told them I'm leaving.",
            "The last payment went out on {day}.",
            "They keep ignoring my emails.",
        ),
        "followups": (
            "I don't want to end up paying for another month.",
            "I can't find the option in {app}.",
            "Can you confirm once it's cancelled?",
        ),
    },
    "unrecognised_charge": {
        "templates": (
            "There's a payment to {merchant} for {amount} that I don't recognise.",
            "I didn't make this transaction: {amount} at {merchant} {when}.",
            "Who is {cryptic}? There's a charge from them on my statement.",
            "Someone has used my card without my permission. There are charges from {country}.",
            "I've never shopped at {merchant}, so why is there a payment to them?",
            "What is this charge for {amount}? I have no idea what it is.",
            "unknown transaction on my account please check",
            "There are several small payments I didn't authorise, all around {amount}.",
            "I think my card details were compromised, there's a charge at {merchant} I didn't "
            "make. I still have the card with me.",
            "A subscription I never signed up for is charging me {amount} every month.",
            "There's a card payment in {currency} but I haven't been abroad.",
            "Can you tell me more about a {amount} transaction from {when}? "
            "The merchant name just says {cryptic}.",
            "My statement shows a purchase I have no memory of making.",
            "I can see a pending payment of {amount} that isn't mine. Can you stop it?",
            "Fraudulent charges on my account! I need this sorted now.",
            "Is the charge from {cryptic} legit? Never heard of it.",
            "My partner and I both checked and neither of us made this {amount} payment at "
            "{merchant}.",
            "There's a charge from {merchant} in {country}, I've never even been there.",
            "Strange transaction on my {card}, {amount} to a company I've never heard of.",
            "I want to dispute a card payment I didn't make.",
            "what is {cryptic} and why did they take {amount} from me",
            "Two payments to {merchant} appeared overnight while I was asleep. Not me.",
        ),
        "context": (
            "My card has been in my wallet the whole time.",
            "Nobody else has access to my account.",
            "I haven't shared my card details with anyone.",
            "I've frozen the card in {app} for now.",
        ),
        "followups": (
            "It appeared {when}.",
            "Please send me a new card if needed.",
            "Can you stop any more payments to them?",
            "I'd like the money back.",
        ),
    },
}

FIN_SIZES = {
    "card_lost_or_stolen": 124,
    "card_declined": 118,
    "transfer_pending": 121,
    "refund_request": 116,
    "login_problem": 120,
    "exchange_rate": 115,
    "cancel_direct_debit": 117,
    "unrecognised_charge": 119,
}

# Harder phrasings of every intent, drawn instead of the plain templates with probability
# ``p_hard``: the keywords of a neighbouring intent used in passing or negated ("my card works
# fine, it's the transfer ..."), indirect wording without the obvious keyword, a clearly
# primary request next to a secondary remark, and very short but still decidable messages.
FIN_HARD: dict[str, tuple[str, ...]] = {
    "card_lost_or_stolen": (
        "Nothing odd on my statement so far, but my {card} is definitely gone. Last had it "
        "{place_lost}. Please block it.",
        "My card isn't being declined or anything, I just physically don't have it anymore. "
        "Can you stop it and send a new one?",
        "Forget my exchange rate question from earlier, more urgent now: my card went missing "
        "in {city}.",
        "I can log into the app fine, it's the card itself that's gone. I think it fell out of "
        "my pocket {place_lost}.",
        "had my bag snatched {place_lost}, everything was in it. what do i do so nobody can "
        "spend on my account",
        "No idea where my card has got to. Used it at {merchant} {when} and now it's not in "
        "my wallet.",
        "Every payment on there is mine so far, but the card has vanished and I want it "
        "cancelled before that changes.",
        "cant find my card anywhere, cancel it",
        "Wallet gone. Card was in it.",
        "Someone took my purse off the table at {merchant}. Stop my {card} before they use it.",
        "I'm expecting a refund from {shop} on this card, but that can wait. Right now I need "
        "it blocked: it was stolen {when}.",
        "My transfer to {recipient} can wait, the bigger problem is my card got nicked "
        "{place_lost}.",
        "Haven't seen my card since the weekend. Does freezing it in {app} stop everything or "
        "do I need a new one?",
        "my card is gone, not declined, GONE. someone pinched it {place_lost}",
        "I still recognise all the payments, but the card is no longer in my possession.",
        "Pretty sure my card slipped out of my phone case {place_lost}. Can you kill it and "
        "send another?",
        "Where do I report that my card's been taken? Nothing has been spent on it yet.",
        "I've turned the house upside down and my card isn't anywhere. Time to cancel it I "
        "think.",
        "The ATM in {city} ate my card and the branch was closed, so I never got it back.",
        "Someone reached into my coat {place_lost} and my {card} is the only thing missing.",
    ),
    "card_declined": (
        "The card is right here in my hand and nothing's been stolen, it just won't go through "
        "at {merchant}.",
        "I'm not after a refund, the payment never happened: {merchant} refused my card at the "
        "checkout.",
        "The app works and transfers go out fine, it's card payments that keep bouncing.",
        "I'm in {country} and it's not about the rate, the card simply isn't being accepted "
        "anywhere.",
        "Till at {merchant} said not authorised. Balance is fine, card is in date.",
        "My {subscription} renewal bounced again, same card I always use.",
        "tried paying {amount} at {merchant}, card got knocked back twice. whats going on",
        "The shop said my bank said no. That's you. Why?",
        "The machine said insufficient funds but I have way more than {amount} available.",
        "It isn't a charge I don't recognise, it's the opposite: my purchase at {merchant} got "
        "refused.",
        "Tried {wallet} at {merchant}, it failed, tried the physical card, failed again.",
        "Why won't my card work for online orders? It's not lost and it's not frozen.",
        "My card works in shops but every time I pay {shop} online it gets rejected.",
        "Couldn't pay for my taxi in {city} last night, the card was refused three times.",
        "I don't want to cancel anything, I just want {merchant} to stop rejecting my card.",
        "payment not going thru on my card again",
        "Card keeps failing at the pump.",
        "I can log in and see my balance, but the card is refused whenever I tap it.",
        "Booking with {airline} won't take my {card}, it just says payment unsuccessful.",
        "Nothing to do with a transfer, it's my card getting turned down at {merchant}.",
    ),
    "transfer_pending": (
        "My card works fine, it's the transfer to {recipient} that hasn't shown up.",
        "Not a refund, I sent the money myself to {recipient} {when} and it's still in limbo.",
        "The {amount} left my account {when} and it's not fraud, I paid {recipient} myself. "
        "They just haven't got it.",
        "I don't need the rate explained, I just need to know where my {amount} to {country} "
        "has got to.",
        "rent money still hasnt landed with {recipient}",
        "Paid {recipient} from my account on {day}, they keep chasing me for it.",
        "Is something holding up outgoing payments? The one to {recipient} still says "
        "processing.",
        "Sent money home to family in {country} {when}, they're still waiting for it.",
        "The payment to {recipient} has said in progress since {day}. No error, it just sits "
        "there.",
        "Moving money between my own accounts shouldn't take {duration}, surely?",
        "My wages haven't come in and my employer swears they sent them on {day}.",
        "I can log in fine and I can see the payment to {recipient}, it just never completes.",
        "Not a direct debit, a one-off payment to {recipient} for {amount}, and it's still not "
        "arrived.",
        "it says sent but {recipient} says nothing's arrived",
        "Where is my money? Sent {amount} to {recipient} {when}.",
        "I'm not disputing anything, I just want the {amount} I sent to {recipient} to arrive.",
        "The deposit I paid for a flat in {city} hasn't reached the agent yet and they're "
        "threatening to give it away.",
        "How long do international payments sit on hold? Mine to {country} is still waiting "
        "after {duration}.",
        "Still nothing at the other end. Paid {recipient} {duration} ago.",
        "My card's not the issue, it's the {amount} I pushed to {recipient} that's gone "
        "missing somewhere in between.",
    ),
    "refund_request": (
        "I do recognise the charge, I made the purchase, but {shop} promised me my money back "
        "and it's not here.",
        "My card worked fine at {shop}, the problem is they still owe me {amount} for the "
        "return.",
        "I know exactly what the {amount} is, I just want it reversed because the {merchant} "
        "order never turned up.",
        "Sent the parcel back to {shop} weeks ago and I'm still out of pocket.",
        "{airline} cancelled my flight, how do I get the {amount} back?",
        "still waiting on the money from {shop} for my return",
        "charged twice for one order at {merchant}, want one of them back",
        "Not fraud, I bought it, but it arrived broken and {shop} won't answer. Can you get "
        "my money back?",
        "The transfer isn't the issue, {merchant} said they'd credit my card {duration} ago "
        "and nothing has come through.",
        "You charged me {amount} for {fee_reason} when my account is meant to be fee-free. "
        "I'd like that back.",
        "The event got called off. How do I claim back what I paid?",
        "{merchant} took {amount} instead of {amount}, I want the difference back.",
        "Returned a jacket to {shop} in store, they said the money would go back on my card. "
        "It hasn't.",
        "Hotel in {city} was shut when we arrived, I want my money back.",
        "I paid a deposit for a course that never ran. Can I get it back through you?",
        "The exchange rate is fine, what I need is the {amount} back from {merchant} for the "
        "cancelled order.",
        "my money back from {shop}??? its been {duration}",
        "Can you chase {merchant} for me? They admitted the double charge but haven't paid it "
        "back.",
        "Paid for a year up front, cancelled after a month, they agreed to return the rest "
        "but haven't.",
        "I'm not reporting fraud, I just never received what I paid {shop} for and want it "
        "reversed.",
        "I paid {merchant} for it myself, but they agreed it was faulty and said the money "
        "would come back to me.",
        "{shop} emailed to say my money back was processed, my balance says otherwise.",
        "Got charged for {fee_reason} even though the app said it was free. Can you put that "
        "back?",
        "The hotel in {city} overcharged me by {amount} and admitted it. How long until I get "
        "it back?",
    ),
    "login_problem": (
        "My card is fine and nothing's been stolen, I just can't get past the login screen.",
        "I wanted to cancel a direct debit myself but I can't even get into the app. How do I "
        "reset my passcode?",
        "The app just spins after I type my PIN and then kicks me back to the start.",
        "The code never comes through so I'm stuck at the front door of my own account.",
        "New {phone}, and now the app won't recognise me.",
        "face id broke after the update, now nothing",
        "I need to check whether my transfer went through, but the app won't let me in. "
        "That's what I need fixed.",
        "Not locked out of the card, locked out of {app}. The reset email never arrives.",
        "Every time I sign in it asks me to verify my identity again and then fails.",
        "Tried three times, now it says my access is suspended.",
        "The app is asking for a code sent to a number I no longer have.",
        "Can't see my statement because {app} logs me out straight away.",
        "cant get in, app says incorrect details",
        "Reinstalled {app} on my {phone} and now activation fails every time.",
        "No idea if my card was declined, I can't even get into the app to check.",
        "Forgot my memorable word and now I'm locked out.",
        "web banking rejects my password even after I reset it",
        "My fingerprint reset and the backup passcode isn't accepted either.",
        "Stuck on the verify it's you screen for {duration} now.",
        "I'm abroad in {country} and can't get into my account because the text never "
        "arrives. Card still works.",
        "My card and transfers are fine, the only problem is the app logs me out the second I "
        "open it.",
        "The text code does arrive but the app says it has expired every time.",
        "it keeps saying too many attempts, try later. been hours",
        "Can you unlock my online banking? I typed my password wrong a few times.",
        "Was going to check the rate before my trip to {country} but the app won't accept my "
        "passcode any more.",
    ),
    "exchange_rate": (
        "Not asking for a refund, I just want to know why the {currency} conversion came out "
        "like that.",
        "I recognise the {amount} payment in {city}, I just don't get how it turned into that "
        "much in {cur_code}.",
        "My card works fine abroad, my question is only about the rate you apply.",
        "Before I send money to {country}, what rate will it be converted at?",
        "How many {currency} would I actually get for {amount}?",
        "Is the conversion done at the mid-market rate or do you add a margin?",
        "Spent {amount} in {city} and it came out a lot higher once it hit my account in "
        "{cur_code}.",
        "The payment isn't pending or missing, I just think you converted it badly.",
        "Paying in {currency} or in {cur_code}, which works out cheaper with you?",
        "How come {amount} turned into so much more on my statement?",
        "is it cheaper to take out cash in {country} or pay by card, conversion wise",
        "Does the rate get fixed when I tap the card or when the payment posts?",
        "I'm not disputing the payment in {city}, only what it was converted at.",
        "What margin do you put on top of the {currency} rate?",
        "The {cur_code} amount changed between pending and settled. Why?",
        "Is there a weekend markup on conversions?",
        "rates for {currency} look off vs google",
        "How is it worked out when a shop in {country} charges me in {currency}?",
        "The card wasn't declined and I know the shop, I just lost a lot on the conversion.",
    ),
    "cancel_direct_debit": (
        "I don't need the past payments back, I just want {biller} to stop taking money from "
        "now on.",
        "I know who {biller} are, I signed up myself, but I've left and want the payments "
        "stopped.",
        "Not a one-off transfer, it's the monthly payment to {biller} I want to stop.",
        "{biller} keep helping themselves to my account every month even though I've left. "
        "Make it stop.",
        "I don't want {biller} taking anything else out of my account.",
        "how do i turn off a recurring payment",
        "stop {biller} pulling money out",
        "The charge from {biller} isn't fraud, I just don't want it any more. Can you end the "
        "mandate?",
        "{biller} won't process my cancellation, so block them from collecting on your side.",
        "Nothing wrong with my card, I just want to end the monthly collection by {biller}.",
        "Can you make sure {biller} can't take the {amount} again next month?",
        "I've moved house and no longer use {biller}. How do I stop them collecting?",
        "I'd like to end the standing order I set up to {recipient}.",
        "Kill the mandate with {biller}.",
        "Is there a way in {app} to stop a company pulling payments, or do I have to ring you?",
        "I don't want a refund or anything, just for {biller}'s payments to end.",
        "Closing down my old subscriptions. First one: {biller}, stop their collections.",
        "{biller} went up again. I'm done, stop the payments.",
        "The {amount} to {biller} is correct and expected, but it should be the last one.",
        "Not fraud, I set it up myself, but I want no more money going to {biller}.",
        "Can I stop {biller} before they take {amount} on {day}?",
        "end my {subscription} payments from this account, ive unsubscribed",
        "{biller} keeps collecting after I cancelled with them. Block it.",
    ),
    "unrecognised_charge": (
        "My card is still in my wallet, I haven't lost it, but there's a payment to {merchant} "
        "I didn't make.",
        "It's not a refund for something I bought, I never bought anything from {merchant}.",
        "My card wasn't declined anywhere, but there's a {amount} payment that isn't mine.",
        "What on earth is {cryptic}?",
        "{amount} to {merchant}?? wasn't me",
        "Someone's been spending on my account.",
        "who took {amount} off me {when}",
        "Not a direct debit I set up, some company called {cryptic} just took {amount}.",
        "The exchange rate isn't my question, my question is why there's a payment in "
        "{currency} when I've been at home all week.",
        "I never signed up to {subscription} but it's charging me.",
        "There's an order from {merchant} on my account that nobody in our house placed.",
        "Can you look at {cryptic}? I've never heard of them and I'm worried.",
        "I haven't been to {city} in years, but apparently I bought something there {when}.",
        "There's money gone from my account to a name I don't know.",
        "There's a {amount} line on my statement that I can't explain.",
        "Login's fine, card's fine, but there's a payment on {day} that isn't mine.",
        "weird charge on my account from {cryptic}",
        "Got an alert for a {amount} payment at {merchant}. I was asleep at the time.",
        "Is this a scam? {cryptic} has charged me twice.",
        "Looks like someone has my card details, the card never left my hand.",
    ),
}

# Statements (not requests) carrying another intent's keywords, mixed into messages of every
# other intent with probability ``p_aside``.
FIN_ASIDES: dict[str, tuple[str, ...]] = {
    "card_lost_or_stolen": (
        "I had to get a new card last year after mine was stolen.",
        "I lost my wallet once before but it turned up.",
    ),
    "card_declined": (
        "My card worked fine at {merchant} this morning.",
        "My card was declined once last year but that got sorted.",
    ),
    "transfer_pending": (
        "My salary came in {when}.",
        "I sent money to {recipient} {when} and that went through fine.",
    ),
    "refund_request": (
        "I'm also waiting on a refund from {shop} but that's a separate thing.",
        "I got my money back from {merchant} last month without any trouble.",
    ),
    "login_problem": (
        "I had to reset my password last week.",
        "I'm writing from {device}.",
    ),
    "exchange_rate": (
        "I've just got back from {country}.",
        "I've been paying in {currency} all week on holiday.",
    ),
    "cancel_direct_debit": (
        "All my bills go out by direct debit from this account.",
        "I pay {biller} by direct debit from this account too.",
    ),
    "unrecognised_charge": (
        "I check my statement every week.",
        "All my other payments look normal.",
    ),
}

# Abbreviations and dropped apostrophes of casual typing: (pattern, replacement).
FIN_ABBREVIATIONS = (
    (r"\baccount\b", "acct"), (r"\btransaction\b", "txn"), (r"\bdirect debit\b", "DD"),
    (r"\bplease\b", "pls"), (r"\bthanks\b", "thx"), (r"\byou\b", "u"), (r"\byour\b", "ur"),
    (r"\btransfer\b", "trf"), (r"\bbecause\b", "cos"),
)

# --------------------------------------------------------------------------------------------
# Healthcare: patient-portal messages to a clinic (no names, contacts, ids or dates)
# --------------------------------------------------------------------------------------------

HC_OPENERS = (
    "Hi!", "Hello.", "Good morning!",
    "Hi,", "Hello,", "Good morning,", "Good afternoon,", "Hello doctor,", "Hi nurse,",
    "Hello clinic team,", "Dear care team,", "To whom it may concern,", "Hi there,",
    "Hello again,",
)
HC_CLOSERS = (
    "Thank you.", "Thanks!", "Thanks so much.", "Please let me know.", "Please advise.",
    "Appreciate your help.", "Thanks in advance.", "Please help asap.",
    "Please get back to me soon.", "Thank you for your time.", "Kind regards.",
    "Any advice is welcome.",
)
HC_GENERIC_CONTEXT = (
    "Sorry if this is the wrong place to ask.", "I'm not sure who else to ask.",
    "I tried calling but the line was busy.",
)
HC_GENERIC_FOLLOWUPS = (
    "Thank you for your patience with me.", "I can check the portal any time today.",
    "A message through the portal is easiest for me.",
)

HC_SLOTS: dict[str, tuple[str, ...]] = {
    "relative": (
        "my son", "my daughter", "my mother", "my father", "my husband", "my wife", "my partner",
        "my toddler", "my elderly mother", "my teenage son", "my grandmother", "my baby", "my dad",
        "my mum",
    ),
    "doctor": (
        "my doctor", "my GP", "the nurse practitioner", "my cardiologist", "the dermatologist",
        "my primary care doctor", "the physician assistant", "my usual doctor",
    ),
    "specialist": (
        "a cardiologist", "a dermatologist", "an orthopaedic specialist", "a physiotherapist",
        "an allergist", "a gastroenterologist", "an ENT specialist",
    ),
    "medication": (
        "lisinopril", "metformin", "atorvastatin", "levothyroxine", "sertraline", "amlodipine",
        "omeprazole", "losartan", "gabapentin", "montelukast", "simvastatin", "escitalopram",
        "pantoprazole", "hydrochlorothiazide",
    ),
    "med_any": (
        "lisinopril", "metformin", "atorvastatin", "sertraline", "omeprazole", "inhaler",
        "albuterol inhaler", "blood pressure pills", "birth control pills", "insulin",
        "thyroid medication", "allergy tablets", "cholesterol medication", "eye drops",
        "steroid cream",
    ),
    "dose": ("10 mg", "20 mg", "25 mg", "50 mg", "100 mg", "500 mg", "40 mg", "5 mg"),
    "n_days": ("2 days", "3 days", "a few days", "one week", "4 pills", "a couple of days"),
    "pharmacy": (
        "my usual pharmacy", "the pharmacy near my house", "the mail-order pharmacy",
        "the pharmacy inside the supermarket", "the pharmacy by my work", "the 24-hour pharmacy",
    ),
    "test": (
        "blood work", "cholesterol test", "MRI", "x-ray", "ultrasound", "A1C test", "thyroid test",
        "urine test", "biopsy", "CT scan", "ECG", "allergy test", "mammogram", "sleep study",
        "stool test", "bone density scan",
    ),
    "marker": (
        "cholesterol", "potassium", "vitamin D", "TSH", "white blood cell", "iron", "liver enzyme",
        "creatinine", "glucose",
    ),
    "routine": (
        "a mild cough", "a runny nose", "a sore throat", "a rash on my arm", "mild back pain",
        "heartburn", "itchy eyes", "a stuffy nose", "trouble sleeping", "a mild earache",
        "a small cut that is healing slowly", "seasonal allergies", "a wart on my finger",
        "very dry skin", "mild headaches", "a stiff neck", "mild knee pain", "dandruff",
    ),
    "urgent": (
        "chest pain", "severe shortness of breath", "a sudden severe headache", "slurred speech",
        "severe abdominal pain", "swelling in my throat", "sudden vision loss",
        "numbness on one side of my body", "heavy bleeding that won't stop",
        "a racing heartbeat and fainting", "blood in my vomit",
    ),
    "body_part": (
        "knee", "lower back", "shoulder", "ankle", "wrist", "neck", "hip", "elbow", "foot", "hand",
        "leg",
    ),
    "duration": (
        "2 days", "3 days", "a week", "about 10 days", "two weeks", "a month", "4 days",
        "a few weeks", "several days",
    ),
    "onset": (
        "about an hour ago", "this morning", "a few minutes ago", "suddenly tonight",
        "in the last hour", "after lunch", "half an hour ago",
    ),
    "when_past": (
        "last week", "on Monday", "two weeks ago", "a few days ago", "last month", "on Friday",
        "yesterday",
    ),
    "when_future": (
        "next week", "this Friday", "tomorrow morning", "sometime this week", "early next month",
        "on Thursday afternoon", "as soon as possible",
    ),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "duration_future": ("two weeks", "a month", "six weeks", "three months"),
    "insurer": (
        "my insurance", "Medicare", "Medicaid", "my new insurance plan", "my employer plan",
        "Blue Cross", "Aetna", "Cigna", "my secondary insurance",
    ),
    "low_temp": ("99.5 F", "100 F", "100.2 F", "37.8 C", "38 C", "99.8 F"),
    "high_temp": ("104 F", "104.5 F", "105 F", "40.5 C", "103.8 F"),
    "infant_age": ("6 weeks", "2 months", "5 weeks", "10 weeks"),
    "purpose": (
        "school", "a new job", "travel", "summer camp", "college", "immigration paperwork",
        "a sports physical", "my new employer", "daycare",
    ),
    "destination": (
        "my new clinic", "the orthopaedic surgeon", "my new primary care office",
        "the specialist I was referred to", "the hospital where I'm having surgery",
        "my physiotherapist", "my new doctor in another state",
    ),
    "allergy": ("penicillin", "latex", "sulfa drugs", "shellfish", "aspirin", "peanuts"),
}


def _hc_amount(rng: random.Random) -> str:
    """A small billing amount such as '$45' or '$320.50' (no long digit runs)."""
    value = rng.choice((rng.randint(15, 99), rng.randint(100, 950)))
    if rng.random() < 0.3:
        return f"${value}.{rng.choice((0, 25, 50, 75)):02d}"
    return f"${value}"


HC_SLOT_FUNCS: dict[str, Callable[[random.Random], str]] = {"amount": _hc_amount}

HEALTHCARE: dict[str, dict[str, tuple[str, ...]]] = {
    "appointment_request": {
        "templates": (
            "I'd like to book an appointment with {doctor} {when_future}.",
            "Can I schedule a check-up for {relative}?",
            "Do you have any openings {when_future}? I'd like to come in about {routine}.",
            "I need to reschedule my appointment on {day}.",
            "Please cancel my appointment for {day}, something came up at work.",
            "Is it possible to do a telehealth visit instead of coming in?",
            "I need a follow-up appointment after my {test}.",
            "Can I book my annual physical?",
            "need an appt asap, any time works for me",
            "Could you fit me in with {doctor} before the end of the week?",
            "I'm a new patient and would like to set up my first visit.",
            "{relative} needs a vaccination appointment. What days do you have?",
            "I missed my appointment {when_past}, can I rebook?",
            "Are there any evening or weekend slots available?",
            "I'd like to switch to a different doctor at the clinic. How do I book with them?",
            "Can I move my {day} visit to the afternoon?",
            "I was told to come back in {duration_future} for a recheck. Please book me in.",
            "How far out are you booking physicals right now?",
            "Can I get a referral appointment with {specialist}?",
            "I'd like a flu shot appointment for me and {relative}.",
            "is there anything open on {day} morning for {relative}",
            "I'm running late for my appointment today, will I still be seen or should I "
            "reschedule?",
        ),
        "context": (
            "It's not urgent.",
            "I work shifts so my availability changes every week.",
        ),
        "followups": (
            "Mornings work best for me.",
            "I can only come after work.",
            "Any day except {day} is fine.",
            "I'd prefer to see {doctor} if possible.",
            "I'm happy to be put on the cancellation list.",
        ),
    },
    "prescription_refill": {
        "templates": (
            "I need a refill of my {med_any}.",
            "Can you send a new prescription for {medication} {dose} to {pharmacy}?",
            "I'm almost out of my {med_any}, only {n_days} left.",
            "The pharmacy says my prescription has no refills left. Can {doctor} authorise more?",
            "refill {med_any} please",
            "Could my {med_any} be changed to a 90-day supply?",
            "I'm travelling next month and need an early refill of my {med_any}.",
            "My prescription for {med_any} expired, can it be renewed without a visit?",
            "Please send my refill to a different pharmacy this time, {pharmacy}.",
            "The pharmacy hasn't received the refill request from you yet. It's been {duration}.",
            "I lost my {med_any}, can I get a replacement prescription?",
            "{relative} needs a refill of their {med_any}.",
            "Can I get my {medication} refilled at the same dose, {dose}?",
            "Is there a generic version of my {med_any}? If so please send that instead.",
            "I ran out of my {med_any} {when_past}. Please refill as soon as you can.",
            "Requesting a renewal of my {med_any} prescription.",
            "My insurance only covers a 30-day supply, can you send the refill for 30 days?",
            "I ran out of my {med_any} while on holiday, can you send it to a pharmacy here?",
            "The pharmacy says they need a new script from {doctor} for my {medication}.",
            "Need my {med_any} refilled before the weekend.",
            "can u renew my {medication} {dose}, pharmacy said to contact you",
            "I'm down to my last few doses of {medication} and the portal won't let me "
            "request a refill.",
        ),
        "context": (
            "I take it once a day.",
            "Nothing has changed with my health since my last visit.",
            "I've been on it for years.",
            "The dose is working well for me.",
        ),
        "followups": (
            "I don't want to miss any doses.",
            "I can pick it up any time this week.",
            "Please let me know if I need to come in first.",
        ),
    },
    "test_results": {
        "templates": (
            "Are my {test} results back yet?",
            "I had my {test} {when_past}. When will I hear about the results?",
            "Can someone explain my {test} results? I don't understand what borderline means.",
            "I saw my {test} results in the portal but there's no note from {doctor}.",
            "My {test} came back flagged high. Should I be worried?",
            "any news on my results?",
            "It's been {duration} since my {test} and nobody has called me.",
            "Could {doctor} review my {test} results and let me know the next steps?",
            "The lab said my results were sent to you {when_past}. Can you share them?",
            "Do I need to come in to go over my {test} results or can it be done by message?",
            "{relative} had a {test} {when_past}, are the results in?",
            "What does a high {marker} level mean on my blood test?",
            "I'm anxious waiting for my {test} results, please tell me as soon as they're ready.",
            "I got a notification that new results are available but I can't open them.",
            "Were my {test} results normal?",
            "Should I repeat the {test} since the last one was inconclusive?",
            "My latest results show something about my {marker}, can you explain?",
            "Has my biopsy come back yet? It's been {duration}.",
            "Can you compare my latest {test} with the one from last year?",
            "Still waiting on my {test} results from {when_past}.",
            "my {marker} was low on the last test, is that something to treat",
            "The report for my {test} uses a lot of terms I don't know. What does it mean overall?",
        ),
        "context": (
            "I've been a bit nervous about it.",
            "I fasted before the test as instructed.",
            "{doctor} ordered it at my last visit.",
            "The lab told me it would take a few days.",
        ),
        "followups": (
            "I'd prefer a message rather than a call.",
            "Do I need to do anything before my next visit?",
        ),
    },
    "billing_insurance": {
        "templates": (
            "I received a bill for {amount} but I thought my visit was covered by {insurer}.",
            "Can you resubmit my claim to {insurer}? It was denied.",
            "Do you accept {insurer}?",
            "I was charged twice for my visit {when_past}.",
            "My insurance changed this year, how do I update it on file?",
            "Why was I billed {amount} for a telehealth visit?",
            "Can I set up a payment plan for my bill?",
            "I need an itemised receipt for my {test} for my insurance.",
            "The copay I was charged is different from what my plan says.",
            "bill is wrong, can someone look at it",
            "Is prior authorisation needed for my {test}? I don't want a surprise bill.",
            "I got an explanation of benefits from {insurer} that doesn't match your bill.",
            "How much does a {test} cost without insurance?",
            "I already paid {amount} at the front desk but the bill still shows it as owed.",
            "Why is my {med_any} no longer covered by {insurer}?",
            "My bill went to collections even though I was told insurance would pay. "
            "I'm very upset.",
            "Can you send me a statement of what I've paid this year for my taxes?",
            "I have a new secondary insurance. Can you bill them for the remaining balance?",
            "What is this {amount} charge labelled facility fee?",
            "Do you offer financial assistance or discounts for self-pay patients?",
            "why do i owe {amount} when {insurer} said it was fully covered",
            "The online payment page won't accept my card when I try to pay my {amount} balance.",
        ),
        "context": (
            "I've been paying the same copay for years.",
            "Money is tight right now.",
            "Nobody explained the cost at check-in.",
        ),
        "followups": (
            "I have the letter from {insurer} if you need it.",
            "I'd like to sort this out before the due date.",
            "Please don't send it to collections while this is being checked.",
        ),
    },
    "urgent_symptoms": {
        "templates": (
            "I'm having {urgent} right now, what should I do?",
            "{relative} has {urgent} and it started {onset}.",
            "Sudden chest pain spreading to my left arm, and I'm sweating a lot.",
            "{relative} has a fever of {high_temp} and is very drowsy, hard to wake up.",
            "I can't catch my breath even sitting still. It's getting worse.",
            "I think I'm having an allergic reaction to {medication}, "
            "my lips and tongue are swelling.",
            "{relative}'s face looks droopy on one side and their speech is slurred.",
            "I fell and hit my head, now I'm confused and throwing up.",
            "severe pain in my lower right belly, can't stand up straight",
            "I'm pregnant and bleeding heavily with bad cramping.",
            "{relative} swallowed some of my pills by accident, not sure how many.",
            "I've been vomiting blood since {onset}.",
            "Worst headache of my life came on suddenly, and my neck is stiff.",
            "My {body_part} is badly swollen and bent at a strange angle after a fall, "
            "I can't move it.",
            "My blood sugar reading is very high and I feel faint and confused.",
            "My baby is {infant_age} old with a fever of {low_temp} and won't feed.",
            "I'm having thoughts of hurting myself and I don't feel safe right now.",
            "Chest feels tight and my heart is racing, I nearly passed out {onset}.",
            "{relative} has a rash that doesn't fade when pressed and a high fever.",
            "I suddenly lost vision in one eye {onset}.",
            "I can't feel my left arm and my face feels numb. Is this serious?",
            "help, {relative} is wheezing badly and the inhaler isn't helping at all",
            "My lips are turning blue and I can barely speak in full sentences.",
            "{relative} has a fever of {high_temp} that won't come down with medicine and is "
            "breathing very fast.",
            "My headache came on suddenly {onset} and now I'm seeing double and can't walk "
            "straight.",
        ),
        "context": (
            "I'm home alone right now.",
            "I've never seen anything like this before.",
            "I'm really scared.",
        ),
        "followups": (
            "It's getting worse by the minute.",
            "Should I go straight to the emergency room?",
            "Should I call an ambulance?",
        ),
    },
    "routine_symptoms": {
        "templates": (
            "I've had {routine} for {duration}. Should I be seen or just wait it out?",
            "{relative} has had {routine} for {duration}. Any advice?",
            "Mild {body_part} pain after exercising, it comes and goes. "
            "Is there anything I can do at home?",
            "I have a low-grade fever of {low_temp} and a sore throat, otherwise feeling ok.",
            "sneezing a lot and itchy eyes, probably allergies?",
            "Is it normal to still have a cough {duration} after a cold?",
            "{relative} has a small rash on their {body_part}, it's not spreading and doesn't "
            "seem to bother them.",
            "I've been getting heartburn after meals, what can I take for it?",
            "Can I take ibuprofen for my {body_part} pain along with my {medication}?",
            "I've been more tired than usual for {duration}. Nothing severe, "
            "just wondering if I should get checked.",
            "Mild headache most afternoons, I think it's screen time. Thoughts?",
            "My {body_part} has been sore since {when_past}, no swelling, just stiff.",
            "My ears feel blocked after a cold. Should I worry?",
            "Got a mosquito bite that's itchy and a bit red, no fever.",
            "I've had trouble sleeping for {duration}, any tips?",
            "Slight dizziness when I stand up too fast. It passes quickly.",
            "I keep getting cold sores, is there something I can use?",
            "Stuffy nose and a mild cough for {duration}, no fever. Do I need antibiotics?",
            "I think {relative} has pink eye, slightly crusty in the morning but otherwise fine.",
            "I've had some mild constipation for {duration}, what do you recommend?",
            "twisted my {body_part} a bit, can walk fine but it aches. ice or heat?",
            "My chest feels a little congested from a cold but breathing is fine. "
            "Anything over the counter?",
            "{relative} has a fever of {low_temp} but is eating, drinking and playing normally.",
            "Occasional mild headache behind my eyes for {duration}, it goes away with "
            "paracetamol.",
        ),
        "context": (
            "I had something similar last year.",
            "Otherwise I feel fine.",
            "I don't want to waste an appointment if it's nothing.",
        ),
        "followups": (
            "It's not getting worse, just not going away.",
            "I've been taking paracetamol which helps a bit.",
            "Eating and drinking normally.",
            "Is it worth booking a visit or can I manage at home?",
        ),
    },
    "medical_records": {
        "templates": (
            "How can I get a copy of my medical records?",
            "Please send my records to my new doctor's office.",
            "I need my vaccination history for {purpose}.",
            "Can you transfer my files to {destination}?",
            "I'm moving to another state and need all my records sent over.",
            "Can I download my visit notes from the portal?",
            "There's a mistake in my chart, it lists an allergy to {allergy} that I don't have.",
            "I'd like a copy of {relative}'s immunisation record for {purpose}.",
            "Please update my chart, I no longer use {med_any}.",
            "How long does it take to process a records request?",
            "I need the images from my {test} on a disc for another hospital.",
            "Who do I send the records release form to?",
            "Can {relative} get proxy access to my portal so they can see my records?",
            "I need a printed copy of my {test} report for {purpose}.",
            "Is there a fee for getting copies of my chart?",
            "My visit summary from my appointment {when_past} is missing from the portal.",
            "Please add my updated family history to my file.",
            "I need a letter summarising my medical history for {purpose}.",
            "How far back do your records go? I need notes from years ago.",
            "the allergy list in my chart is out of date, {allergy} should be added",
            "My old clinic closed, can you request my records from them?",
            "Can you fax or upload my records to {destination} before my appointment there?",
        ),
        "context": (
            "This is for {purpose}.",
            "I've already signed the release form.",
        ),
        "followups": (
            "They need it by the end of the month.",
            "An electronic copy is fine.",
            "I'd prefer a paper copy if possible.",
        ),
    },
}

HC_SIZES = {
    "appointment_request": 125,
    "prescription_refill": 122,
    "test_results": 118,
    "billing_insurance": 120,
    "urgent_symptoms": 116,
    "routine_symptoms": 123,
    "medical_records": 126,
}

# Harder phrasings (see FIN_HARD). For the two symptom intents the severity cues decide: mild
# symptoms that mention alarming words in passing or negated, and alarming ones described in
# plain words.
HC_HARD: dict[str, tuple[str, ...]] = {
    "appointment_request": (
        "I'm not unwell, I'm just due for my yearly check-up. When can I come in?",
        "My {med_any} is fine for now, I just need my annual review booked.",
        "No need to send the results by message, I'd rather book a slot with {doctor} to go "
        "over them.",
        "What's the earliest {doctor} can see me?",
        "any chance of a slot {when_future}",
        "Can't make {day} anymore, have you got anything else?",
        "My {body_part} has been bothering me for {duration}, nothing urgent, but I'd like to "
        "be seen. When's the next opening?",
        "The bill is sorted now, thanks. Separately, I need to book {relative} in for a "
        "check-up.",
        "Put me down for the next available slot with {doctor}.",
        "Something came up and I can't do {day}. Could we push it to {when_future}?",
        "Could {relative} be seen by {specialist}? The referral came through.",
        "I need to come in for a blood pressure check, when are you free?",
        "I'd like to come in to talk about changing my {medication}, not just get a refill.",
        "can i come in {when_future}",
        "Book me in for the {test} that {doctor} mentioned.",
        "Happy to do a video call instead if that's quicker to get.",
        "I'm due my {duration_future} recheck. Any afternoon {when_future} works.",
        "Our whole family needs flu jabs, can we come in together?",
        "Not a records request, I just want to book a visit with the new GP who joined.",
        "Nothing's wrong, I'd just like someone to look at a mole at my next visit. When can "
        "I get in?",
        "I don't need a refill, I need a proper review with {doctor} this time. When can I "
        "come in?",
        "Find me a slot please, ideally {when_future}.",
        "Can {relative}'s check-up be moved to {when_future}?",
        "My records are all up to date, I just need to book the follow-up after my {test}.",
    ),
    "prescription_refill": (
        "My blood pressure is stable and I don't need an appointment, I just need more "
        "{medication}.",
        "Not a billing question, the pharmacy just needs your sign-off to fill my {med_any} "
        "again.",
        "The {test} was fine, so can my {medication} be renewed at the same dose?",
        "Down to my last {n_days} of {medication}.",
        "Pharmacy says they're still waiting on you for my {med_any}.",
        "About to run out of my {med_any} and I'm away {when_future}.",
        "meds running low again",
        "No new symptoms, just need the usual {medication} {dose} sent over.",
        "I don't need to come in, do I? It's only the same {med_any} I always get.",
        "{pharmacy} can't fill my {medication} until you send a new script.",
        "Can you top up my {med_any}? Only {n_days} left.",
        "My {med_any} ran out {when_past}, can you send more through?",
        "I don't need a new medicine, just more of the {medication} I'm on.",
        "Is the repeat for {medication} approved? The pharmacy hasn't got it.",
        "Could you send my {med_any} to {pharmacy} instead of the usual place?",
        "need more {medication}, on my last box",
        "My chart is fine, I just need the {med_any} renewed so I don't run out.",
        "My insurance approved a 90-day supply, can you resend the {medication} script for "
        "that?",
        "Feeling well on the {medication}, so same again please, it's nearly gone.",
        "The pharmacy is asking for your approval again, same as every three months.",
        "I've got a couple of days of tablets left, can the usual be sent through?",
        "My bloods were fine and I feel well, so I'd like to carry on with {medication}. "
        "Can you send a new supply?",
        "Heartburn's under control on the {medication}, I just need the next batch.",
        "The cough's long gone, what I need is my {med_any} renewed before it runs out.",
        "The pharmacy can't hand anything over until {doctor} signs off. Can you nudge them?",
    ),
    "test_results": (
        "I don't need a copy of my records, I just want to know if my {test} was okay.",
        "No need for an appointment, can someone just tell me what the {test} showed?",
        "My bill is sorted, I'm still waiting to hear what the {test} found.",
        "Heard nothing since the {test} {when_past}, is no news good news?",
        "What did the scan show?",
        "Was my {marker} okay this time?",
        "results??",
        "I feel fine, I'm only asking because the portal marked my {marker} in red.",
        "The {test} report says within normal limits except one line. What does that line "
        "mean?",
        "Did anything come back from the {test}?",
        "Not about a refill, I want to know what the {marker} number on my blood test means.",
        "Any update on the {test} {relative} had {when_past}?",
        "I'm not worried about symptoms, I just want the outcome of my {test}.",
        "Has {doctor} had a chance to look at what came back?",
        "the lab said theyd send it to you, what did it say",
        "Is my {marker} something I should act on, going by the latest bloods?",
        "Nothing in the portal yet from my {test}. Should it be there by now?",
        "Before my appointment, can you tell me whether the {test} was normal?",
        "My {medication} dose depends on the {test}, so what did it show?",
    ),
    "billing_insurance": (
        "I'm not asking about the results themselves, but why the {test} cost me {amount}.",
        "I don't want my records, I want the invoice for my {test} explained.",
        "My appointment went fine, but the charge afterwards was {amount} more than I was "
        "quoted.",
        "Why do I owe {amount}?",
        "The statement says I still owe {amount} but I paid at the desk.",
        "{insurer} says the visit was coded wrong on your side.",
        "Not a prescription question, I want to know why {insurer} won't pay for the "
        "{med_any}.",
        "Got a letter saying my account is overdue. I thought that was settled.",
        "How much will the {test} be if I haven't met my deductible?",
        "who do i talk to about a charge of {amount}",
        "I need the paperwork for my {test} so {insurer} will reimburse me.",
        "The refill went fine, but I was charged full price instead of my copay.",
        "{insurer} paid their part, so why is the whole {amount} still on my balance?",
        "Could the {amount} be split into monthly instalments?",
        "I was billed for a no-show but I did come to my appointment.",
        "Is {specialist} in network with {insurer}?",
        "Please check my balance, I don't think the {amount} is right.",
        "I paid {amount} already, why am I still getting reminders?",
        "My results were all fine, but the lab fee of {amount} was never mentioned to me.",
    ),
    "urgent_symptoms": (
        "It's not a cold, {relative} is struggling to breathe and their lips look grey.",
        "I know I should book an appointment, but I can't wait: crushing pain in my chest "
        "right now.",
        "I'm not after a refill, I took double my {medication} by mistake and now my heart is "
        "racing and I feel faint.",
        "Started as a mild headache but now I can't see properly and my arm is numb.",
        "The rash has spread to my face and my throat feels tight.",
        "baby is {infant_age} old, temp {low_temp}, very floppy and won't wake properly",
        "{relative} just collapsed and is only half responsive.",
        "I started the new {medication} {onset} and my tongue is swelling up.",
        "Not a routine question: I've been coughing up blood since {onset}.",
        "The pain in my belly is the worst I've ever had and I can't keep anything down.",
        "{relative} fell {onset}, hit their head and keeps asking the same questions over and "
        "over.",
        "I can't stop the bleeding from the cut on my {body_part}, it's soaked through three "
        "towels.",
        "Is it ok to wait till morning? {relative} is breathing really fast with a fever of "
        "{high_temp}.",
        "my chest hurts when i breathe and my left arm feels heavy, started {onset}",
        "My {body_part} went cold and pale {onset} and I can't feel it.",
        "Not sure if it's serious: my speech went strange {onset} and one side of my face "
        "drooped.",
        "My vision went blurry all of a sudden and my face is numb on one side.",
        "{relative} is wheezing and can't finish a sentence, the inhaler did nothing.",
        "My results can wait, right now I'm dizzy, sweating and my chest feels crushed.",
        "Probably nothing, but {relative} has gone very pale, is sweating and says their chest "
        "feels heavy.",
        "I thought it was just heartburn but now the pain is going into my jaw and I feel sick.",
        "It started as {routine}, but in the last hour I've got really short of breath and my "
        "lips are tingling.",
        "Sorry to bother you, I'm sure it's silly, but I can't lift my right arm and my words "
        "are coming out wrong.",
        "{relative} has been sleepy all day, barely responds and has a fever of {high_temp}.",
        "Is it normal to feel this faint on {medication}? I passed out twice this morning.",
    ),
    "routine_symptoms": (
        "No chest pain or breathing trouble, just a tickly cough for {duration}.",
        "Not an emergency at all, a small bruise on my {body_part} that's taking a while to "
        "fade.",
        "My headache isn't sudden or severe, just a dull ache by evening. Anything I can try?",
        "Noticed a little blood when I brush my teeth, gums are a bit sore. Anything I can do "
        "at home?",
        "My heart sometimes flutters after coffee, no dizziness or pain.",
        "Slight rash on my {body_part}, no swelling of my lips or throat, just itchy.",
        "Temperature is {low_temp}, but my little one is running around as usual. Do I need to "
        "do anything?",
        "Not urgent, but I've had {routine} for {duration}. Home remedies?",
        "A bit breathless on the stairs since the cold, but fine at rest. Normal?",
        "I don't need a refill, just wondering if it's ok to take something for {routine} "
        "alongside my {medication}.",
        "I'm not worried about my test results, I'd like advice on {routine}.",
        "My little one bumped their head on the table, cried for a minute, now playing "
        "normally. Anything to watch for?",
        "A little sore on the side of my chest when I cough, I think from all the coughing.",
        "ankle still a bit puffy {duration} after rolling it, walking fine",
        "Tummy's been a bit unsettled for {duration}. No blood, no fever.",
        "Mild sore throat, no trouble swallowing. Gargle or come in?",
        "My eye's a bit red and itchy, vision is totally fine.",
        "Small cut on my {body_part} that's a little pink at the edges, no fever, not "
        "spreading.",
        "I'm not dizzy or faint, just a bit lightheaded if I skip breakfast.",
    ),
    "medical_records": (
        "Not asking about my results, I need a copy of my whole chart sent to the new clinic.",
        "I don't need a refill, but my chart still lists {medication} and I stopped it ages "
        "ago.",
        "It's not a billing question, I need my immunisation history for {purpose}.",
        "The {test} images need to go to {destination}, can you arrange that?",
        "Can {destination} get a copy of my notes?",
        "My allergy to {allergy} is missing from my file.",
        "need my files sent to {destination}",
        "I'm switching practices, what do I need to do to move everything across?",
        "{specialist} asked for my history before I see them. Can you send it?",
        "There's a diagnosis on my summary that I was never given. Can it be corrected?",
        "No need for an appointment, I just want the notes from my last visit.",
        "I've seen the {test} result itself, but I need the full written report for "
        "{purpose}.",
        "The portal only shows the last year of my history. Can I see the older stuff?",
        "I need proof of my vaccinations, it's for {purpose}.",
        "Who can see my file? I'd like to add {relative} as my proxy.",
        "Could I have a paper copy of everything you hold on me?",
        "My chart says I smoke, I've never smoked.",
        "My old clinic says they'll forward my file once you request it.",
        "The bill's paid, I just need the written summary of that visit for {purpose}.",
    ),
}

HC_ASIDES: dict[str, tuple[str, ...]] = {
    "appointment_request": (
        "I have an appointment on {day} anyway.",
        "I saw {doctor} {when_past}.",
        "I'm booked in with {doctor} {when_future} as well.",
    ),
    "prescription_refill": (
        "I'm on {medication} {dose}.",
        "I've been on {medication} for years.",
        "I picked up my {med_any} from {pharmacy} {when_past}.",
    ),
    "test_results": (
        "I had my {test} done {when_past}.",
        "My {marker} was a bit high last time.",
        "My last blood work was all normal.",
    ),
    "billing_insurance": (
        "My claims go through {insurer}.",
        "I paid my last bill in full.",
        "I've just changed insurance.",
    ),
    "urgent_symptoms": (
        "I was in the ER last year with chest pain, all fine since.",
        "I had a bad asthma attack a few years ago but it's well controlled now.",
    ),
    "routine_symptoms": (
        "I've also had {routine}, but that's nothing new.",
        "I've had a bit of a cold this week too.",
        "I've got {routine} at the moment as well.",
    ),
    "medical_records": (
        "My records were moved here from my old clinic.",
        "{destination} already has my history.",
        "I've already got a copy of my chart.",
    ),
}

HC_ABBREVIATIONS = (
    (r"\bappointment\b", "appt"), (r"\bprescription\b", "script"), (r"\bmedication\b", "meds"),
    (r"\bplease\b", "pls"), (r"\byou\b", "u"), (r"\btemperature\b", "temp"),
    (r"\btomorrow\b", "tmrw"), (r"\bbecause\b", "cos"), (r"\bdoctor\b", "doc"),
    (r"\bthanks\b", "thx"),
)

# fmt: on

# --------------------------------------------------------------------------------------------
# Safety checks (also run by the generator before writing anything)
# --------------------------------------------------------------------------------------------

PHI_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"[\w.+-]+@[\w-]+\.[\w.]+",  # email
        r"\d{3}[-. ]\d{3,4}[-. ]\d{4}",  # phone number
        r"\(\d{3}\)\s*\d{3}",  # phone number with area code
        r"\d{7,}",  # long digit runs
        r"\d{3}-\d{2}-\d{4}",  # SSN
        r"\bMRN\b",
        r"record (?:number|no\.?|#)\s*:?\s*\d",
        r"#\s*\d{5,}",
        r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}",  # dates
        r"\b(?:19|20)\d{2}\b",  # years
        r"date of birth|\bDOB\b|\bborn on\b",
        r"\bDr\.?\s+[A-Z][a-z]+",  # named doctor
    )
)
FINANCE_PATTERNS = (re.compile(r"\d{8,}"), re.compile(r"\d{4}[ -]\d{4}[ -]\d{4}"))

SLOT_RE = re.compile(r"\{(\w+)\}")
FIRST_PERSON_I = re.compile(r"^I\b")


def normalise(text: str) -> str:
    """Key used for de-duplication: lowercase, alphanumerics only, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9£$€]+", " ", text.lower()).split())


def violations(text: str, domain: str) -> list[str]:
    """Return the list of constraint violations for one text (empty if it is fine)."""
    problems = []
    if text != text.strip() or "\n" in text or "\r" in text:
        problems.append("whitespace/newline")
    if not MIN_CHARS <= len(text) <= MAX_CHARS:
        problems.append(f"length {len(text)}")
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        problems.append(f"words {len(text.split())}")
    if "{" in text or "}" in text:
        problems.append("unfilled slot")
    patterns = PHI_PATTERNS if domain == "healthcare" else FINANCE_PATTERNS
    problems += [f"pattern {p.pattern}" for p in patterns if p.search(text)]
    return problems


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

DOMAINS = {
    "finance": {
        "classes": FINANCE,
        "sizes": FIN_SIZES,
        "slots": FIN_SLOTS,
        "slot_funcs": FIN_SLOT_FUNCS,
        "openers": FIN_OPENERS,
        "closers": FIN_CLOSERS,
        "generic_context": FIN_GENERIC_CONTEXT,
        "generic_followups": FIN_GENERIC_FOLLOWUPS,
        "hard": FIN_HARD,
        "asides": FIN_ASIDES,
        "abbreviations": FIN_ABBREVIATIONS,
        "p_hard": 0.6,
        "p_aside": 0.45,
        "description": "customer messages to an online bank's support team",
    },
    "healthcare": {
        "classes": HEALTHCARE,
        "sizes": HC_SIZES,
        "slots": HC_SLOTS,
        "slot_funcs": HC_SLOT_FUNCS,
        "openers": HC_OPENERS,
        "closers": HC_CLOSERS,
        "generic_context": HC_GENERIC_CONTEXT,
        "generic_followups": HC_GENERIC_FOLLOWUPS,
        "hard": HC_HARD,
        "asides": HC_ASIDES,
        "abbreviations": HC_ABBREVIATIONS,
        "p_hard": 0.65,
        "p_aside": 0.55,
        "description": "patient-portal messages to a clinic, labelled for triage",
    },
}


def fill(template: str, rng: random.Random, spec: dict) -> str:
    """Replace every ``{slot}`` with an independent random fill."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name in spec["slot_funcs"]:
            return spec["slot_funcs"][name](rng)
        return rng.choice(spec["slots"][name])

    return SLOT_RE.sub(one, template)


def capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def make_sentence(template: str, rng: random.Random, spec: dict) -> tuple[str, bool]:
    """Fill a template; also say whether it may start lowercase after an opener like 'Hi,'."""
    text = fill(template, rng, spec)
    first = text.split()[0]
    lowerable = (
        not template.startswith("{")  # slot fills may be names (Tesco, Medicare)
        and not FIRST_PERSON_I.match(text)
        and first[1:] == first[1:].lower()  # keep acronyms such as MRI
    )
    return text, lowerable


def n_extras(rng: random.Random) -> int:
    r = rng.random()
    for count, p_cumulative in EXTRA_COUNTS:
        if r < p_cumulative:
            return count
    return 0


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip inside a word: two letters swapped, one dropped or one doubled."""
    i = rng.randrange(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def roughen(text: str, rng: random.Random, abbreviations: tuple[tuple[str, str], ...]) -> str:
    """Casual typing: abbreviations, dropped apostrophes and typos in longer lowercase words."""
    if rng.random() < P_ABBREVIATE:
        for pattern, short in abbreviations:
            if rng.random() < P_ABBREVIATION_EACH:
                text = re.sub(pattern, short, text, flags=re.IGNORECASE)
        text = re.sub(r"\b(\w+)'(t|s|m|re|ve|ll|d)\b", r"\1\2", text)
    if rng.random() < P_TYPO:
        words = text.split(" ")
        candidates = [i for i, w in enumerate(words) if re.fullmatch(r"[a-z]{5,}", w)]
        for i in rng.sample(candidates, min(len(candidates), rng.choice((1, 1, 2)))):
            words[i] = typo(words[i], rng)
        text = " ".join(words)
    return text


def compose(label: str, rng: random.Random, spec: dict) -> str:
    """Build one message: [opener] [context] core [context] [follow-up] [closer] + tweaks.

    The core is a hard phrasing with probability ``p_hard``, and with probability ``p_aside``
    a statement about another intent is mixed into the context.
    """
    cls = spec["classes"][label]
    templates = spec["hard"][label] if rng.random() < spec["p_hard"] else cls["templates"]
    core, core_lowerable = make_sentence(rng.choice(templates), rng, spec)
    terse = core[:1].islower()  # lowercase templates are the terse/casual register

    before: list[tuple[str, bool]] = []
    after: list[str] = []
    followups: list[str] = []
    pool = [(t, True) for t in cls["context"] + spec["generic_context"]]
    pool += [(t, False) for t in cls["followups"] + spec["generic_followups"]]
    for template, is_context in rng.sample(pool, n_extras(rng)):
        text, lowerable = make_sentence(template, rng, spec)
        text = capitalise(text)
        if is_context and rng.random() < P_CONTEXT_FIRST:
            before.append((text, lowerable))
        elif is_context:
            after.append(text)
        else:
            followups.append(text)
    n_asides = 0
    if rng.random() < spec["p_aside"]:
        n_asides = 2 if rng.random() < P_SECOND_ASIDE else 1
    for topic in rng.sample([name for name in spec["asides"] if name != label], n_asides):
        text, lowerable = make_sentence(rng.choice(spec["asides"][topic]), rng, spec)
        if rng.random() < P_CONTEXT_FIRST:
            before.insert(0, (capitalise(text), lowerable))
        else:
            after.append(capitalise(text))

    body = [*before, (core if terse else capitalise(core), core_lowerable)]
    tail = [*after, *followups]
    if rng.random() < P_CLOSER:
        tail.append(rng.choice(spec["closers"]))
    if tail and body[-1][0][-1] not in ".?!":
        # an unpunctuated terse core followed by more text still needs a sentence break
        body[-1] = (body[-1][0] + ".", body[-1][1])
    if rng.random() < P_OPENER:
        opener = rng.choice(spec["openers"])
        first, lowerable = body[0]
        if opener.endswith(",") and lowerable and rng.random() < P_LOWER_AFTER_OPENER:
            body[0] = (first[:1].lower() + first[1:], lowerable)
        body.insert(0, (opener, False))
    text = " ".join([sentence for sentence, _ in body] + tail)

    if terse or rng.random() < P_LOWERCASE:
        text = text.lower()
        if rng.random() < P_TEXTSPEAK:
            text = re.sub(r"\bplease\b", "pls", text)
            text = re.sub(r"\byou\b", "u", text)
    text = roughen(text, rng, spec["abbreviations"])
    if rng.random() < P_NO_FINAL_PUNCT:
        text = text.rstrip(".!")
    return " ".join(text.split())


def generate_domain(domain: str, seed: int) -> dict[str, list[str]]:
    """Generate the unique texts of every class of one domain, in label order."""
    spec = DOMAINS[domain]
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: dict[str, list[str]] = {}
    for label, size in spec["sizes"].items():
        texts[label] = []
        attempts = 0
        while len(texts[label]) < size:
            attempts += 1
            if attempts > size * 500:
                raise RuntimeError(f"{domain}/{label}: could not make {size} unique texts")
            text = compose(label, rng, spec)
            key = normalise(text)
            if key in seen or violations(text, domain):
                continue
            seen.add(key)
            texts[label].append(text)
    return texts


def split_domain(
    texts: dict[str, list[str]], rng: random.Random
) -> dict[str, list[tuple[str, str]]]:
    """Stratified 70/15/15 split per class, rows shuffled within each split."""
    rows: dict[str, list[tuple[str, str]]] = {name: [] for name, _ in SPLITS}
    for label, items in texts.items():
        items = list(items)
        rng.shuffle(items)
        n_train = round(len(items) * SPLITS[0][1])
        n_val = round(len(items) * SPLITS[1][1])
        bounds = {
            "train": (0, n_train),
            "validation": (n_train, n_train + n_val),
            "test": (n_train + n_val, len(items)),
        }
        for name, (lo, hi) in bounds.items():
            rows[name] += [(text, label) for text in items[lo:hi]]
    for name in rows:
        rng.shuffle(rows[name])
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("text", "label"))
        writer.writerows(rows)


def count_table(rows: dict[str, list[tuple[str, str]]], labels: list[str]) -> list[str]:
    """Markdown table of examples per class and split."""
    names = [name for name, _ in SPLITS]
    lines = [
        "| label | " + " | ".join(names) + " | total |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for label in [*labels, None]:
        counts = [sum(1 for _, lab in rows[n] if label is None or lab == label) for n in names]
        name = f"`{label}`" if label else "**total**"
        lines.append(f"| {name} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    return lines


def readme(all_rows: dict[str, dict[str, list[tuple[str, str]]]], seed: int) -> str:
    lines = [
        "# peftops demo datasets",
        "",
        "Two small **synthetic** English text-classification datasets used by the peftops demos",
        "and tests. Every message was written by the peftops authors: it is generated by",
        "`scripts/make_demo_data.py` from hand-written templates and slot values (merchants,",
        "amounts, countries, medications, symptoms, durations, ...), with optional openers,",
        "closers and context sentences and some register variation (terse, lowercase, missing",
        "punctuation, abbreviations, typos). No text comes from any existing dataset, and no",
        "message describes a real person or a real account.",
        "",
        f"Regenerate (byte-identical for the same seed; this copy used seed {seed}):",
        "",
        "```bash",
        f"python scripts/make_demo_data.py --out data --seed {seed}",
        "```",
        "",
        "Files: `<domain>/{train,validation,test}.csv`, UTF-8, columns `text,label`, split",
        "70/15/15 stratified by label, rows shuffled. Texts are unique within a domain (after",
        "lowercasing and collapsing whitespace and punctuation), 10 to 600 characters, one line.",
        "",
    ]
    for domain, rows in all_rows.items():
        spec = DOMAINS[domain]
        labels = list(spec["classes"])
        lines += [
            f"## {domain}",
            "",
            f"{capitalise(spec['description'])}. Labels, in id order:",
            "",
            *[f"{i}. `{label}`" for i, label in enumerate(labels)],
            "",
            *count_table(rows, labels),
            "",
        ]
    lines += [
        "Healthcare messages contain no names, contact details, identifiers (record numbers,",
        "SSN-like numbers) or dates; the only digits are small doses, temperatures, durations",
        "and bill amounts. Finance messages contain no card or account numbers (at most the last",
        "four digits of a card).",
        "",
        "Neighbouring classes overlap on purpose, the way real support traffic does: many",
        "messages use a neighbouring intent's keywords in passing or negated (\"my card works",
        "fine, it's the transfer to my landlord that hasn't shown up\" is `transfer_pending`),",
        "ask indirectly without the obvious keyword, are very short, or add a side remark about",
        "another topic next to one clear request; urgent and routine symptoms differ only by",
        "severity cues. Every message still has the one label a human reader would give (no",
        "label noise is added). The intended difficulty: a frozen MiniLM embedding plus a",
        "logistic-regression probe (the pipeline's baseline) scores roughly 0.80 to 0.90 test",
        "accuracy on each domain, leaving room for fine-tuning to show its value.",
        "",
        "## License",
        "",
        "Same as the peftops project: Apache-2.0.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="output directory")
    parser.add_argument("--seed", type=int, default=13, help="random seed")
    args = parser.parse_args(argv)

    all_rows = {}
    for offset, domain in enumerate(DOMAINS):
        texts = generate_domain(domain, args.seed * 100 + offset)
        rows = split_domain(texts, random.Random(args.seed * 100 + 50 + offset))
        all_rows[domain] = rows
        for name, split_rows in rows.items():
            write_csv(args.out / domain / f"{name}.csv", split_rows)
        sizes = ", ".join(f"{name}={len(split_rows)}" for name, split_rows in rows.items())
        print(f"{domain}: {sizes}")
    (args.out / "README.md").write_text(readme(all_rows, args.seed), encoding="utf-8")
    print(f"wrote {args.out}/")


if __name__ == "__main__":
    main()
